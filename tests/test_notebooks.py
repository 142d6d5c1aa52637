"""The tutorials run headless (nbclient, the venv's python3 kernel) and write their plots; in git they carry no
outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PLOTS = {
    "01_data_scientist_tour.ipynb": ("segment_sizes_true_vs_released.png", "relative_error_vs_epsilon.png",
                                     "budget_spent_over_releases.png", "gate_exclusions.png"),
    "02_ad_team_training_job.ipynb": ("roc_auc_with_and_without_segments.png",),
}


def _read(name: str):
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(PLOTS)


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_notebooks_in_git_have_no_outputs(name):
    import nbformat

    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLOTS))
def test_notebook_runs_headless_and_writes_its_plots(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("ADTARGET_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = _read(name)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    for plot in PLOTS[name]:
        png = tmp_path / plot
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG", plot
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
