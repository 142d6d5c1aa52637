"""Synthetic cross-service usage logs and consent records, with the ground truth that produced them.

:func:`generate` draws persons in latent interest groups, their events on seven services (event contract,
DESIGN.md §3) and their consent records (consent contract) as numpy arrays; :func:`write_events` and
:func:`write_consent` put them in Parquet or CSV files. Fully vectorised (loops run over groups, services,
countries, never over events or persons) and deterministic: the same :class:`SyntheticConfig` gives
byte-identical arrays. docs/synth.md describes the generative model and the figures measured.

Consent ``birth_year`` is float64 with NaN for unknown (nullable int16 in Parquet, an empty field in CSV);
``jurisdiction`` is ``""`` when unknown (null in files). An age is ``end_year - birth_year``.

The public types are in ``_model`` and :func:`generate` in ``_generate``; the model lives in ``_world`` (static
tables), ``_persons`` (persons, consent), ``_events`` (interests, events) and the writers in ``_io``.
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
