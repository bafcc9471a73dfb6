"""Rules for the test suite itself, read from its sources: every test checks something, test
modules share helpers through tests/helpers, tests/factories.py and the fixtures, never by
importing one another, and close codes are named (iridium.live.protocol, iridium.web.sockets),
never written out."""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
TEST_MODULES = sorted(TESTS.rglob("test_*.py"))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def defined_tests(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            yield node


def checks_something(test: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """An assert on something other than a constant, `pytest.raises` or Playwright's `expect`."""
    for node in ast.walk(test):
        if isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant):
            return True
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("pytest.raises", "expect") or called.startswith("expect("):
                return True
    return False


def test_the_rules_are_read_from_the_whole_suite():
    names = {str(path.relative_to(TESTS)) for path in TEST_MODULES}
    assert {"test_suite.py", "test_chat_consumer.py", "browser/test_chat_browser.py"} <= names
    tree = ast.parse("def test_x():\n    assert True\n\ndef test_y():\n    assert 1 + 1 == 2\n")
    assert [checks_something(test) for test in defined_tests(tree)] == [False, True]


def test_every_test_checks_something():
    unchecked = [
        f"{path.relative_to(TESTS)}::{test.name}"
        for path in TEST_MODULES
        for test in defined_tests(parsed(path))
        if not checks_something(test)
    ]
    assert unchecked == []


IMPORTED_IN_A_SCRIPT = re.compile(r"^\s*(?:from|import)\s+(tests\.(?:\w+\.)*test_\w+)", re.M)


def test_no_test_module_imports_another():
    imports = []
    for path in TEST_MODULES:
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_"):
                    imports.append(f"{path.relative_to(TESTS)} imports {name}")
        # Scripts a test runs in another process, written as strings.
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in IMPORTED_IN_A_SCRIPT.findall(node.value):
                    imports.append(f"{path.relative_to(TESTS)} runs a script importing {name}")
    assert imports == []


# The project's own websocket close codes (4401, 4403, 4404, ...): 4400-4499.
OUR_CLOSE_CODES = range(4400, 4500)


def written_out_close_codes(tree: ast.Module) -> list[int]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        and node.value in OUR_CLOSE_CODES
    ]


def test_close_codes_are_named_never_written_out():
    tree = ast.parse("assert code == 4404\nassert len(text) == 4001\nassert code == CLOSE_X\n")
    assert written_out_close_codes(tree) == [4404]
    written = [
        f"{path.relative_to(TESTS)}: {code}"
        for path in TEST_MODULES
        if path.name != "test_suite.py"  # the range above
        for code in written_out_close_codes(parsed(path))
    ]
    assert written == []
