"""`harness recipe new | check | list` and recipes registered by installed packages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.recipe_loader import RecipeError, available_recipes, entry_point_recipes, load_recipe, recipe_entries
from harness.recipe_tools import check_recipe, new_recipe


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def statuses(report) -> dict[str, str]:
    return {item.name: item.status for item in report.items}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def scaffold_check(tmp_path_factory):
    """One scaffold, checked with two baseline runs (shared: it takes a few seconds)."""
    folder = new_recipe("demo", tmp_path_factory.mktemp("scaffold"))
    return folder, check_recipe(str(folder), repeats=2)


# -- recipe new ----------------------------------------------------------------


def test_new_writes_a_valid_recipe_with_its_name(tmp_path):
    folder = new_recipe("my-recipe", tmp_path)
    assert folder == tmp_path / "my-recipe"
    spec = load_recipe(str(folder)).spec
    assert spec.name == "my-recipe" and spec.metric.name == "acc"
    for rel in ("README.md", "src/train.py", "src/infer.py", "src/config.py", "src/data.py", "src/model.py",
                "eval/prepare.py", "eval/predict.py", "eval/score.py"):
        assert (folder / rel).is_file(), rel
    text = "".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    assert "__RECIPE_NAME__" not in text and "my-recipe" in (folder / "README.md").read_text()


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(RecipeError, match="lowercase"):
        new_recipe("Bad Name", tmp_path)
    new_recipe("taken", tmp_path)
    with pytest.raises(RecipeError, match="already exists"):
        new_recipe("taken", tmp_path)


def test_new_through_the_cli(tmp_path):
    result = cli("recipe", "new", "viacli", "--dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created recipe viacli" in result.stdout and (tmp_path / "viacli" / "recipe.toml").is_file()
    again = cli("recipe", "new", "viacli", "--dir", tmp_path)
    assert again.returncode == 2 and "error:" in again.stderr and "already exists" in again.stderr


# -- recipe check ----------------------------------------------------------------


def test_check_of_the_scaffold_runs_the_baseline_twice_and_suggests_a_margin(scaffold_check):
    _, report = scaffold_check
    assert report.ok, report.items
    got = statuses(report)
    assert [got[n] for n in ("spec", "evaluator", "source", "surface", "isolation", "eval-view", "held-out",
                             "baseline")] == ["ok"] * 8
    assert got["noise"] in ("ok", "warn")
    assert [r.seeds for r in report.runs] == [[0], [1000]]
    assert all(r.label == "keep" and 0.5 < r.score < 1.0 for r in report.runs)
    noise = report.noise
    assert noise is not None and noise.scores == [r.score for r in report.runs]
    assert noise.delta == pytest.approx(abs(noise.scores[0] - noise.scores[1]))
    assert noise.suggested_noise_margin == pytest.approx(2 * noise.std, rel=0.05)
    assert noise.declared_noise_margin == 0.03
    assert not report.not_run


def test_the_check_leaves_no_run_behind(scaffold_check, tmp_path):
    folder, _ = scaffold_check
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "eval", "recipe.toml", "src"]


def test_check_fails_an_evaluator_inside_the_source_tree(tmp_path):
    folder = new_recipe("leaky", tmp_path)
    edit(folder / "recipe.toml", 'path = "eval"', 'path = "src/eval"')
    (folder / "eval").rename(folder / "src" / "eval")
    edit(folder / "recipe.toml", 'editable = ["config.py", "model.py", "train.py", "infer.py"]',
         'editable = ["config.py", "model.py", "train.py", "infer.py", "eval/*.py"]')
    report = check_recipe(str(folder), run_baseline=False)
    isolation = next(i for i in report.items if i.name == "isolation")
    assert isolation.status == "fail" and "inside the source tree" in isolation.detail
    assert "eval/score.py" in isolation.detail  # and names what an agent could edit
    assert not report.ok


def test_check_fails_an_editable_glob_that_climbs_out_of_the_source(tmp_path):
    folder = new_recipe("climber", tmp_path)
    edit(folder / "recipe.toml", 'editable = ["config.py",', 'editable = ["../eval/*.py", "config.py",')
    isolation = next(i for i in check_recipe(str(folder), run_baseline=False).items if i.name == "isolation")
    assert isolation.status == "fail" and "'../eval/*.py' reaches outside" in isolation.detail


def test_check_fails_source_that_imports_the_evaluator(tmp_path):
    folder = new_recipe("peeks", tmp_path)
    edit(folder / "src" / "train.py", "import config\n", "import config\nfrom score import load_predictions  # noqa\n")
    report = check_recipe(str(folder), run_baseline=False)
    isolation = next(i for i in report.items if i.name == "isolation")
    assert isolation.status == "fail" and "train.py imports 'score'" in isolation.detail


def test_check_fails_a_train_command_that_names_eval_folders(tmp_path):
    folder = new_recipe("cheat", tmp_path)
    edit(folder / "recipe.toml", 'train = "python train.py"', 'train = "python train.py {heldout}"')
    report = check_recipe(str(folder), run_baseline=False)
    assert "phases.train names {heldout}" in next(i.detail for i in report.items if i.name == "isolation")


def test_check_fails_held_out_labels_copied_where_a_phase_sees_them(tmp_path):
    folder = new_recipe("leaks", tmp_path)
    edit(folder / "eval" / "prepare.py", '    np.save(Path(heldout_labels_dir) / "y.npy", y)\n',
         '    np.save(Path(heldout_labels_dir) / "y.npy", y)\n    np.save(Path(heldout_inputs_dir) / "answers.npy", y)\n')
    report = check_recipe(str(folder), repeats=1)
    item = next(i for i in report.items if i.name == "held-out")
    assert item.status == "fail" and "y.npy = " in item.detail and "answers.npy" in item.detail
    assert not report.ok


def test_check_fails_a_knob_without_its_line(tmp_path):
    folder = new_recipe("noknob", tmp_path)
    edit(folder / "src" / "config.py", "LR = 0.01", "LEARNING_RATE = 0.01")
    report = check_recipe(str(folder), run_baseline=False)
    surface = next(i for i in report.items if i.name == "surface")
    assert surface.status == "fail" and "knob LR" in surface.detail
    assert statuses(report)["baseline"] == "skipped"


def test_check_warns_about_globs_that_match_nothing(tmp_path):
    folder = new_recipe("globs", tmp_path)
    edit(folder / "recipe.toml", 'protected = ["data.py"]', 'protected = ["data.py", "missing/**"]')
    surface = next(i for i in check_recipe(str(folder), run_baseline=False).items if i.name == "surface")
    assert surface.status == "warn" and "'missing/**' matches no file" in surface.detail


def test_check_reports_a_failing_baseline(tmp_path):
    folder = new_recipe("broken", tmp_path)
    edit(folder / "src" / "train.py", "def main() -> None:\n", "def main() -> None:\n    raise SystemExit(3)\n")
    report = check_recipe(str(folder), repeats=2)
    baseline = next(i for i in report.items if i.name == "baseline")
    assert baseline.status == "fail" and "crash" in baseline.detail and not report.ok
    assert len(report.runs) == 1 and report.noise is None


def test_check_of_a_gpu_recipe_without_gpus_reports_what_it_could_not_run(tmp_path):
    folder = new_recipe("needsgpu", tmp_path)
    edit(folder / "recipe.toml", "memory_mb = 2048", "memory_mb = 2048\ngpus = 2")
    report = check_recipe(str(folder), gpus_available=0)
    got = statuses(report)
    assert report.ok and got["baseline"] == "skipped" and "noise" not in got
    assert "needs 2 GPU(s)" in next(i.detail for i in report.items if i.name == "baseline")
    assert any("data preparation" in w for w in report.not_run)
    assert any("noise estimate" in w for w in report.not_run)
    assert not report.runs


def test_check_of_an_invalid_spec_fails_with_the_field(tmp_path):
    folder = new_recipe("invalid", tmp_path)
    edit(folder / "recipe.toml", 'direction = "maximize"', 'direction = "upwards"')
    report = check_recipe(str(folder))
    assert not report.ok and report.items[0].name == "spec" and "metric.direction" in report.items[0].detail


def test_check_through_the_cli(tmp_path):
    folder = new_recipe("clicheck", tmp_path)
    ok = cli("recipe", "check", folder, "--no-run", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] and data["recipe"] == "clicheck"
    assert [i["name"] for i in data["items"]] == ["spec", "evaluator", "source", "surface", "isolation", "eval-view",
                                                "baseline"]
    edit(folder / "src" / "config.py", "HIDDEN = 16", "WIDTH = 16")
    bad = cli("recipe", "check", folder, "--no-run")
    assert bad.returncode == 1 and "fail" in bad.stdout and "not ready" in bad.stdout


# -- recipe list and entry points --------------------------------------------------


def make_distribution(site: Path, entry_points: str, name: str = "acme_recipes") -> None:
    """An installed distribution, as importlib.metadata finds it on sys.path."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[harness.recipes]\n" + textwrap.dedent(entry_points))


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    package = site / "acme_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pathlib import Path\nEXTRA = Path(__file__).parent / 'extra'\n")
    new_recipe("spiral-pkg", package)
    (package / "spiral-pkg").rename(package / "spiral_pkg")
    (package / "spiral_pkg" / "__init__.py").write_text("")
    new_recipe("extra", package)
    new_recipe("byfolder", site / "data")
    make_distribution(site, """\
        acme-spirals = acme_pkg.spiral_pkg
        acme-extra = acme_pkg:EXTRA
        acme-folder = data/byfolder
        acme-broken = acme_pkg.missing_module
        collision = acme_pkg.spiral_pkg
    """)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_points_register_recipes_in_three_forms(site):
    entries = {e.name: e for e in entry_point_recipes()}
    assert entries["acme-spirals"].folder == (site / "acme_pkg" / "spiral_pkg").resolve()
    assert entries["acme-extra"].folder == (site / "acme_pkg" / "extra").resolve()
    assert entries["acme-folder"].folder == (site / "data" / "byfolder").resolve()
    assert "acme_recipes" in entries["acme-spirals"].origin
    assert entries["acme-broken"].problem and "not installed" in entries["acme-broken"].problem
    for name in ("acme-spirals", "acme-extra", "acme-folder"):
        assert name in available_recipes()
        assert load_recipe(name).folder == entries[name].folder
    assert "acme-broken" not in available_recipes()


def test_shipped_recipes_win_over_registered_ones(site):
    shadowed = [e for e in recipe_entries() if e.name == "collision" and e.origin != "shipped"]
    assert shadowed and "shadowed" in shadowed[0].problem
    assert load_recipe("collision").spec.name == "collision"


def test_a_broken_registration_is_a_clear_error(site):
    with pytest.raises(RecipeError, match="acme-broken.*cannot be used"):
        load_recipe("acme-broken")


def test_recipe_list_shows_shipped_and_registered_recipes(site):
    result = subprocess.run([sys.executable, "-m", "harness.cli", "recipe", "list"], capture_output=True, text=True,
                            timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("collision", "airbench96", "nanochat-d12", "parameter-golf", "collision-vjepa", "acme-spirals",
                 "acme-extra", "acme-folder"):
        assert name in out, name
    assert "entry point acme-spirals" in out and "unusable" in out
    line = next(l for l in out.splitlines() if l.startswith("airbench96"))
    assert "git" in line and "1 GPU" in line


def test_recipe_list_names_an_invalid_registered_recipe_and_goes_on(tmp_path):
    site = tmp_path / "site"
    new_recipe("badspec", site / "data")
    recipe_toml = site / "data" / "badspec" / "recipe.toml"
    recipe_toml.write_text(recipe_toml.read_text() + "\nno_such_field = 1\n")
    make_distribution(site, "acme-bad = data/badspec\n")
    result = subprocess.run([sys.executable, "-m", "harness.cli", "recipe", "list"], capture_output=True, text=True,
                            timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("acme-bad"))
    assert "invalid:" in line
    assert "collision" in result.stdout and "Traceback" not in result.stderr


def test_a_registered_recipe_runs_by_name(site, tmp_path):
    import os

    result = subprocess.run([sys.executable, "-m", "harness.cli", "run", "acme-folder", "--trials", "1",
                             "--fidelity", "smoke", "--out", str(tmp_path / "runs"), "--run-id", "r"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recipe=byfolder" in result.stdout


def test_a_level_that_needs_no_gpu_is_checked_on_a_machine_without_one(tmp_path):
    """budgets.gpus = 2, but `[fidelities.cpu]` declares gpus = 0: check runs that level's
    baseline, and the evaluator's prepare() is told the run's level."""
    folder = new_recipe("cpulevel", tmp_path)
    edit(folder / "recipe.toml", "memory_mb = 2048", "memory_mb = 2048\ngpus = 2")
    with open(folder / "recipe.toml", "a") as f:
        f.write('\n[fidelities.cpu]\nseeds = [0]\ncost = 0.2\ngpus = 0\n')
    prepare = folder / "eval" / "prepare.py"
    text = prepare.read_text()
    signature = "def prepare(train_dir: Path, heldout_inputs_dir: Path, heldout_labels_dir: Path) -> None:\n"
    assert signature in text
    edit(prepare, signature, signature.replace(") -> None:", ", fidelity: str | None = None) -> None:")
         + f"    Path({str(tmp_path / 'level.txt')!r}).write_text(str(fidelity))\n")
    assert statuses(check_recipe(str(folder), gpus_available=0, repeats=1))["baseline"] == "skipped"  # full: GPUs
    report = check_recipe(str(folder), gpus_available=0, repeats=1, fidelity="cpu", work_dir=tmp_path)
    got = statuses(report)
    assert report.ok and got["baseline"] in ("ok", "warn"), report.items
    assert len(report.runs) == 1 and report.runs[0].label == "keep"
    assert (tmp_path / "level.txt").read_text() == "cpu"
