"""Registry-driven: every installed model passes the contract checks, with no test written for it."""

import pytest

from zoo_core.testing import check_model, model_names, run_checks


@pytest.mark.parametrize("name", model_names())
def test_every_model_meets_the_contract(name):
    check_model(name)


def test_the_checks_can_fail():
    # A config that cannot be built is reported, not passed over.
    results = run_checks("lstm", {"hidden_size": -1})
    assert any(not r.ok and r.check == "config" for r in results)
