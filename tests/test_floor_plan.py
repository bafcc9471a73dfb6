"""The import contracts (pyproject.toml, run by `lint-imports`) leave no package of the project
out: a package that no contract names could import any floor, and be imported by any."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config["contracts"]


def project_modules() -> set[str]:
    """The project's root packages, and every package and module directly in `iridium`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    modules = {name for name in config["root_packages"] if name != "iridium"}
    for path in (ROOT / "iridium").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            modules.add(f"iridium.{path.name}")
        elif path.suffix == ".py":
            modules.add(f"iridium.{path.stem}")
    return modules


def kept_in_place(contract: dict) -> set[str]:
    """The modules whose own imports the contract restricts."""
    if contract["type"] == "layers":
        return {
            name.strip()
            for layer in contract["layers"]
            for name in layer.replace("|", ":").split(":")
        }
    return set(contract.get("source_modules", []))


def guarded(contract: dict) -> set[str]:
    """The modules the contract says who may import."""
    if contract["type"] == "layers":
        return kept_in_place(contract)
    return set(contract.get("forbidden_modules", []))


def test_the_modules_are_read_from_the_whole_project():
    modules = project_modules()
    assert {"chat", "iridium.ai", "iridium.infra", "iridium.settings"} <= modules
    assert {"iridium.demo_provider", "iridium.asgi"} <= modules


def test_every_package_is_held_in_its_own_imports():
    held = set().union(*(kept_in_place(contract) for contract in contracts()))
    assert sorted(project_modules() - held) == []


def test_every_package_is_guarded_against_imports_from_below():
    guarded_modules = set().union(*(guarded(contract) for contract in contracts()))
    assert sorted(project_modules() - guarded_modules) == []


def test_no_floor_below_the_composition_root_imports_the_demo_provider():
    below_the_root = kept_in_place(contracts()[0]) - {
        "iridium.asgi",
        "iridium.urls",
        "iridium.routing",
        "iridium.web",
    }
    forbidden_to = set().union(
        *(
            set(contract["source_modules"])
            for contract in contracts()
            if "iridium.demo_provider" in contract.get("forbidden_modules", [])
        )
    )
    assert sorted(below_the_root - forbidden_to) == []
