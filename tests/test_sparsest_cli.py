"""The minimum-L0 mode as an attack value (``Sparsest``) and on the command line
(``jsma-fast attack --sparsest``): the same rows as ``jsma_fast.sparsest``, resume keyed by
its settings, the refused combinations, and the report's L0 section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA, Normalized, Sparsest, sparsest
from jsma_fast.cli import main
from jsma_fast.minimum_l0 import (
    DEFAULT_REFINE_ABOVE,
    DEFAULT_SEARCH_WITHIN,
    PORTFOLIO_TARGETED,
    PORTFOLIO_THOROUGH,
    PORTFOLIO_UNTARGETED,
    THOROUGH_SEARCH,
    run_portfolio,
)
from jsma_fast.runner import attack_dataset

NET = """
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 5))
"""
ROWS = 8


def _model(work: Path) -> nn.Module:
    model = nn.Sequential(nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 5))
    model.load_state_dict(torch.load(work / "weights.pt"))
    return model.eval()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A model file with its weights, and rows of 36 features in [0, 1] labelled by the model
    (every row classified correctly, so every row is in the report's figures). On these rows
    later members give some rows their outputs, and some targeted rows fail."""
    root = tmp_path_factory.mktemp("sparsest_cli")
    (root / "net.py").write_text(NET)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 5))
    torch.save(model.state_dict(), root / "weights.pt")
    x = torch.rand(ROWS, 36, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model(x).argmax(1)
    np.savez(root / "data.npz", x=x.numpy(), y=y.numpy())
    np.save(root / "per_row.npy", np.zeros((ROWS, 36)))
    np.save(root / "mask.npy", np.arange(36) % 3 != 0)
    return root


def _data(work: Path):
    with np.load(work / "data.npz") as d:
        return torch.from_numpy(d["x"]), torch.from_numpy(d["y"])


def _args(work: Path, out: Path, *extra: str):
    return [
        "attack",
        "--model",
        f"{work / 'net.py'}:build",
        "--weights",
        str(work / "weights.pt"),
        "--data",
        str(work / "data.npz"),
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def _results(out: Path):
    with np.load(out / "results.npz") as got:
        return {k: got[k] for k in got.files}


@pytest.mark.parametrize("targets", ["untargeted", "next"])
def test_the_command_gives_the_rows_of_the_library_call(work, tmp_path, targets):
    out = tmp_path / "r"
    assert main(_args(work, out, "--sparsest", "--targets", targets, "--keep-adv")) == 0
    x, y = _data(work)
    want = run_portfolio(_model(work), x, targets, y=y)
    assert torch.equal(want.result.l0, sparsest(_model(work), x, targets, y=y).l0)
    got = _results(out)
    assert got["source_index"].tolist() == list(range(ROWS))
    for name in ("success", "l0", "target", "predicted", "iterations", "stop_code", "x_adv"):
        np.testing.assert_array_equal(got[name], getattr(want.result, name).numpy(), err_msg=name)
    np.testing.assert_array_equal(got["member"], want.member.numpy())
    assert got["success"].any()
    # What ran, for the summary and the report: the mode and its members.
    run = json.loads((out / "summary.json").read_text())["run"]
    portfolio = PORTFOLIO_UNTARGETED if targets == "untargeted" else PORTFOLIO_TARGETED
    assert run["mode"]["name"] == "sparsest"
    assert [m["name"] for m in run["mode"]["members"]] == [name for name, _ in portfolio]
    assert run["attack"].startswith("Sparsest(gamma=0.3,")


def test_the_same_command_twice_gives_the_same_results(work, tmp_path):
    for name in ("a", "b"):
        args = _args(work, tmp_path / name, "--sparsest", "--targets", "random", "--seed", "4")
        assert main([*args, "--batch-size", "3"]) == 0
    first, second = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_the_report_has_the_l0_section(work, tmp_path):
    out = tmp_path / "r"
    assert main(_args(work, out, "--sparsest", "--targets", "untargeted", "--gamma", "0.5")) == 0
    got = _results(out)
    ok = got["success"].astype(bool)
    report = (out / "report.md").read_text()
    assert report.startswith("# Minimum-L0 (sparsest) attack report")
    assert "## Minimum-L0 mode" in report
    names = [name for name, _ in PORTFOLIO_UNTARGETED]
    assert all(f"| {name} (" in report for name in names), report
    assert "gamma = 0.5 of the 36 features" in report
    above = DEFAULT_REFINE_ABOVE
    assert f"swap-searched, those with more than {above} changed features refined" in report
    near = DEFAULT_SEARCH_WITHIN
    assert f"at most {near} more changed features than the row's best so far" in report
    l0 = got["l0"][ok]
    within = [f"{100 * (ok & (got['l0'] <= k)).mean():.1f}%" for k in (5, 10, 20)]
    row = (
        f"| {ROWS} | {100 * ok.mean():.1f}% | {np.median(l0):.1f} | {l0.mean():.2f} | "
        + " | ".join(within)
        + " |"
    )
    assert row in report, report
    lines = report.splitlines()
    for index, name in enumerate(names):  # the member that gave each successful row its output
        kept = int((ok & (got["member"] == index)).sum())
        line = next(line for line in lines if line.startswith(f"| {index} | {name} ("))
        assert f") | {kept} | " in line, line
    for figure in ("l0.png", "success_vs_l0.png"):
        assert (out / "figures" / figure).stat().st_size > 0


def test_resume_refuses_other_sparsest_settings(work, tmp_path, capsys):
    out = tmp_path / "r"
    base = _args(work, out, "--targets", "untargeted", "--batch-size", "4")
    assert main([*base, "--sparsest", "--sparsest-members", "1"]) == 0
    for other in (["--sparsest"], ["--sparsest", "--gamma", "0.2"], []):
        capsys.readouterr()
        assert main([*base, *other, "--resume"]) == 2, other
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "different configuration" in err, err
        assert "'attack'" in err
    assert main([*base, "--sparsest", "--sparsest-members", "1", "--resume"]) == 0
    assert "this run: 0 data set rows" in capsys.readouterr().out


REFUSED = [
    (["--variant", "wjsma"], "--variant is not used with --sparsest"),
    (["--preset", "paper"], "--preset is not used with --sparsest"),
    (["--theta", "-1"], "--theta is not used with --sparsest"),
    (["--saliency", "single"], "--saliency is not used with --sparsest"),
    (["--jacobian", "probs"], "--jacobian is not used with --sparsest"),
    (["--domain-rule", "saturated"], "--domain-rule is not used with --sparsest"),
    (["--start-domain", "all"], "--start-domain is not used with --sparsest"),
    (["--method", "exact"], "--method is not used with --sparsest"),
    (["--max-iters", "3"], "--max-iters is not used with --sparsest"),
    (["--theta-units", "absolute"], "--theta-units is not used with --sparsest"),
    (["--clip-min", "WORK/per_row.npy"], "--clip-min gives per-row bounds (shape (8, 36))"),
    (["--gamma", "2"], "invalid attack option: gamma must be a number in (0, 1], got 2.0"),
]


@pytest.mark.parametrize("extra, words", REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_refused_combinations_give_one_line_and_status_2(work, tmp_path, capsys, extra, words):
    extra = [e.replace("WORK", str(work)) for e in extra]
    assert main(_args(work, tmp_path / "o", "--sparsest", *extra)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jsma-fast attack: error: "), lines
    assert words in lines[0], lines
    if "per-row" not in words and "gamma" not in words:  # refused before anything ran
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--sparsest-members", "2"], "--sparsest-members is used only with --sparsest"),
        (["--sparsest-seconds", "1"], "--sparsest-seconds is used only with --sparsest"),
        (["--sparsest-thorough"], "--sparsest-thorough is used only with --sparsest"),
        (["--sparsest", "--sparsest-members", "0"], "argument --sparsest-members: must be an"),
        (["--sparsest", "--sparsest-seconds", "-1"], "argument --sparsest-seconds: must be a"),
    ],
)
def test_the_mode_options_are_checked(work, tmp_path, capsys, extra, words):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(_args(work, tmp_path / "o", *extra)))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err.splitlines()[-1], err


def test_normalisation_and_mask_as_the_library(work, tmp_path):
    extra = ["--normalize", "0.5", "0.25", "--mask", str(work / "mask.npy"), "--targets", "next"]
    assert main(_args(work, tmp_path / "r", "--sparsest", "--sparsest-members", "2", *extra)) == 0
    x, y = _data(work)
    mask = torch.from_numpy(np.load(work / "mask.npy"))
    want = sparsest(Normalized(_model(work), 0.5, 0.25), x, "next", y=y, members=2, mask=mask)
    got = _results(tmp_path / "r")
    np.testing.assert_array_equal(got["l0"], want.l0.numpy())
    np.testing.assert_array_equal(got["success"], want.success.numpy())
    assert got["success"].any()


# ------------------------------------------------------------------------ the attack value


def test_sparsest_is_a_value_keyed_by_its_settings():
    a = Sparsest()
    assert a == Sparsest() and hash(a) == hash(Sparsest()) and repr(a) == repr(Sparsest())
    assert a == Sparsest(batch_size=2, num_threads=1)  # execution settings only
    for other in (
        Sparsest(members=1),
        Sparsest(gamma=0.2),
        Sparsest(skip_at=0),
        Sparsest(search=False),
        Sparsest(refine_order="margin"),
        Sparsest(refine_above=0),
        Sparsest(search_within=None),
        Sparsest(search_within=3),
        Sparsest(max_seconds=5.0),
        Sparsest(clip_max=np.full(36, 0.5)),
        Sparsest(normalization=(0.5, 0.25)),
        Sparsest(untargeted=[("top2-", dict(variant="top2", theta=-1.0))]),
        Sparsest(search_options=dict(removals=4)),
        Sparsest.thorough(),
    ):
        assert other != a and repr(other) != repr(a), other
    with pytest.raises(AttributeError):
        a.gamma = 0.5  # type: ignore[misc]
    # Options in any order, or already frozen, are the same member.
    same = Sparsest(untargeted=[("m", dict(theta=1.0, variant="tjsma"))])
    assert same == Sparsest(untargeted=[("m", dict(variant="tjsma", theta=1.0))])
    assert Sparsest(untargeted=same.untargeted) == same


@pytest.mark.parametrize(
    "options, error, words",
    [
        (dict(gamma=0), ValueError, "gamma must be a number in (0, 1]"),
        (dict(members=0), ValueError, "members must be None or an int >= 1"),
        (dict(skip_at=-1), ValueError, "skip_at must be an int >= 0"),
        (dict(max_seconds=-1.0), ValueError, "max_seconds must be None or a number >= 0"),
        (dict(refine_order="random"), ValueError, "refine_order must be one of"),
        (dict(refine_above=-1), ValueError, "refine_above must be an integer >= 0"),
        (dict(search_within=-2), ValueError, "search_within must be an integer >= 0, got -2"),
        (dict(search_within="4"), TypeError, "search_within must be an integer, got str"),
        (dict(search="yes"), TypeError, "search must be a bool"),
        (dict(clip_min=1.0, clip_max=0.0), ValueError, "clip_min must be < clip_max"),
        (dict(untargeted=[]), ValueError, "untargeted: portfolio must hold at least one"),
        (dict(targeted=[("x", dict(gamma=0.1))]), ValueError, "a member may set only"),
        (dict(targeted=[("x", dict(variant="nope"))]), ValueError, "targeted member 'x'"),
        (dict(normalization=(0.5, 0.0)), ValueError, "std must be > 0"),
        (dict(search_options=dict(rounds=2)), ValueError, "search_options may set only"),
        (dict(search_options=[("removals", 2)]), TypeError, "search_options must be None or"),
    ],
)
def test_bad_settings_name_the_option(options, error, words):
    with pytest.raises(error) as info:
        Sparsest(**options)
    assert words in str(info.value)


def test_the_attack_value_is_sparsest_with_its_members_column(work):
    x, y = _data(work)
    model = _model(work)
    attack = Sparsest(members=2, gamma=0.5)
    got = attack(model, x, "next", y=y)
    run = run_portfolio(model, x, "next", y=y, members=2, gamma=0.5)
    assert torch.equal(got.x_adv, run.result.x_adv) and torch.equal(got.member, run.member)
    first_two = tuple(name for name, _ in PORTFOLIO_TARGETED[:2])
    assert got.names == tuple(run.names) == first_two
    assert tuple(name for name, _ in attack.attacks("next")) == first_two
    assert isinstance(attack.attacks("untargeted")[0][1], JSMA)
    # The data-set runner stores the member of each row beside the usual columns.
    cols = attack_dataset(model, (x, y), attack, "next", batch_size=3, progress=False).columns
    assert cols is not None and cols["member"].dtype == np.int64
    assert cols["member"].shape == (ROWS,) and set(cols["member"]) <= {0, 1}


def test_the_thorough_setting_is_the_library_call_with_its_constants(work, tmp_path):
    """``--sparsest-thorough`` and ``Sparsest.thorough()`` run the thorough portfolio and
    search; the search options are held by value (a dict in any order, tiers as a list)."""
    x, y = _data(work)
    model = _model(work)
    thorough = Sparsest.thorough()
    assert thorough.untargeted == Sparsest(untargeted=PORTFOLIO_THOROUGH).untargeted
    listed = {**THOROUGH_SEARCH, "tiers": list(THOROUGH_SEARCH["tiers"])}
    assert thorough == Sparsest(
        untargeted=PORTFOLIO_THOROUGH, search_options=listed, search_within=None
    )
    want = run_portfolio(
        model, x, y=y, portfolio=PORTFOLIO_THOROUGH, search_options=THOROUGH_SEARCH,
        search_within=None,
    )  # fmt: skip
    assert torch.equal(thorough(model, x, y=y).x_adv, want.result.x_adv)
    out = tmp_path / "t"
    extra = ["--sparsest", "--sparsest-thorough", "--targets", "untargeted", "--keep-adv"]
    assert main(_args(work, out, *extra)) == 0
    got = _results(out)
    np.testing.assert_array_equal(got["x_adv"], want.result.x_adv.numpy())
    np.testing.assert_array_equal(got["member"], want.member.numpy())
    mode = json.loads((out / "summary.json").read_text())["run"]["mode"]
    assert [m["name"] for m in mode["members"]] == [name for name, _ in PORTFOLIO_THOROUGH]
    assert mode["search_options"]["ranking"] == "forward"
