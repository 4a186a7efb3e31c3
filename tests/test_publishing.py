"""Publishing and fetching guard what a user types: pip's pass-through options, a mistyped
folder, credentials in a URL."""

from __future__ import annotations

import pytest

from zoo_core import ZooError


@pytest.mark.parametrize(
    "args",
    [
        ["zoo-lstm", "--requireme=reqs.txt"],  # a prefix pip reads as --requirement
        ["zoo-lstm", "--req", "reqs.txt"],
        ["zoo-lstm", "-yrreqs.txt"],  # -y, then -r with its file
        ["zoo-lstm", "-qr", "reqs.txt"],
        ["zoo-lstm", "--constraint=c.txt"],
        ["zoo-lstm", "--"],
    ],
)
def test_uninstall_passes_only_a_few_options_to_pip(args):
    from zoo_core.scaffold import uninstall_args

    with pytest.raises(ZooError, match="only -y/--yes, -q/--quiet and -v/--verbose") as caught:
        uninstall_args(args)
    assert len(str(caught.value).splitlines()) == 1


def test_uninstall_keeps_the_options_it_allows():
    from zoo_core.scaffold import uninstall_args

    args = ["-y", "--quiet", "lstm", "-vv", "--yes", "-yq", "--verbose"]
    assert uninstall_args(args) == ["-y", "--quiet", "zoo-lstm", "-vv", "--yes", "-yq", "--verbose"]
