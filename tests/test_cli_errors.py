"""The one table from errors to exit codes, and the one-line error format (in-process, fast)."""

from __future__ import annotations

import argparse
import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget import exceptions as exc
from adtarget.cli import main
from adtarget.cli._errors import (
    EXIT_BUDGET,
    EXIT_INPUT,
    EXIT_OTHER,
    EXIT_REPORT,
    EXIT_USAGE,
    CommandInputError,
    ReportAuditError,
    UsageError,
    describe,
)
from adtarget.cli._options import delta, epsilon, window_end
from adtarget.cli._output import Output

EXPECTED = {
    exc.AdtargetError: EXIT_OTHER,
    exc.ParameterError: EXIT_USAGE,
    exc.SchemaError: EXIT_INPUT,
    exc.InputFormatError: EXIT_INPUT,
    exc.TaxonomyError: EXIT_INPUT,
    exc.SensitiveCategoryError: EXIT_INPUT,
    exc.ConsentError: EXIT_INPUT,
    exc.LedgerError: EXIT_INPUT,
    exc.UnknownAdvertiserError: EXIT_USAGE,
    exc.ProvenanceError: EXIT_OTHER,  # the CLI never forges an object: a refused one is a bug, not bad input
    exc.BudgetExhaustedError: EXIT_BUDGET,
    exc.ReportValidationError: EXIT_REPORT,
    UsageError: EXIT_USAGE,
    CommandInputError: EXIT_INPUT,
    ReportAuditError: EXIT_REPORT,
}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_every_error_class_has_its_documented_exit_code(cls):
    code, message, hint = describe(cls("something is wrong"))
    assert code == EXPECTED[cls] and message == "something is wrong" and hint


def test_the_table_covers_every_error_class_adtarget_exports():
    classes = [getattr(exc, n) for n in exc.__all__ if not issubclass(getattr(exc, n), Warning)]
    assert {c for c in classes if c is not exc.RefusedColumnError} <= set(EXPECTED)
    assert describe(exc.RefusedColumnError("email refused", ("email",)))[0] == EXIT_INPUT


def test_an_unregistered_advertiser_is_a_usage_error_with_the_register_hint():
    code, _, hint = describe(exc.UnknownAdvertiserError("advertiser 'nobody' is not registered"))
    assert code == EXIT_USAGE and "adtarget advertiser add" in hint


def test_os_errors_are_input_errors_and_anything_else_is_other():
    assert describe(FileNotFoundError(2, "No such file or directory", "x.parquet"))[:2] == (
        EXIT_INPUT, "No such file or directory: x.parquet")
    code, message, hint = describe(KeyError("boom"))
    assert code == EXIT_OTHER and message.startswith("unexpected KeyError") and "--debug" in hint


@given(st.text())
def test_an_error_is_always_exactly_one_line(text):
    err = io.StringIO()
    code, message, hint = describe(exc.SchemaError(text))
    Output(stderr=err, stdout=io.StringIO()).error(message, hint, code)
    assert len(err.getvalue().splitlines()) == 1
    assert err.getvalue().startswith("adtarget: error: ")


@given(st.text(max_size=12))
def test_epsilon_option_accepts_only_finite_positive_numbers(text):
    try:
        value = epsilon(text)
    except argparse.ArgumentTypeError as error:
        assert "epsilon" in str(error)
    else:
        assert math.isfinite(value) and value > 0


@pytest.mark.parametrize("text", ["1", "-0.1", "nan", "inf", "x"])
def test_delta_option_refuses_values_outside_0_1(text):
    with pytest.raises(argparse.ArgumentTypeError, match="delta"):
        delta(text)


def test_window_end_parses_dates_and_refuses_naive_datetimes():
    assert window_end("2026-11-01") == 1_793_491_200
    assert window_end("2026-11-01T00:00:00Z") == 1_793_491_200
    assert window_end("today") % 86_400 == 0
    with pytest.raises(argparse.ArgumentTypeError, match="time zone"):
        window_end("2026-11-01T00:00:00")


def test_main_in_process_returns_exit_codes_and_prints_one_line(capsys):
    assert main(["--version"]) == 0
    assert main(["run", "--events", "e.parquet", "--consent", "c.csv", "--out", "o", "--epsilon", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [err[0]] and "epsilon must be a finite number > 0, got '0'" in err[0]
    assert main(["no-such-command"]) == 2
