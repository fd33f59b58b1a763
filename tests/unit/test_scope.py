"""A stored scope fits its column, cut at whole names."""

import pytest

from b24app.services.tokens import SCOPE_WIDTH, fit_scope


@pytest.mark.parametrize("scope", ["", "crm", "crm,sale,placement,user_brief", "x" * SCOPE_WIDTH])
def test_a_scope_that_fits_is_kept_as_it_is(scope):
    assert fit_scope(scope) == scope


def test_a_long_list_is_cut_after_the_last_whole_name_that_fits():
    fitted = fit_scope("crm," * 3000)
    assert len(fitted) <= SCOPE_WIDTH
    assert set(fitted.split(",")) == {"crm"}
    assert fitted.endswith("crm")


def test_one_name_longer_than_the_column_is_cut_to_it():
    assert fit_scope("y" * 10_000) == "y" * SCOPE_WIDTH
