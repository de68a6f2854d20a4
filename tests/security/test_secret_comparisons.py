"""Secrets are compared in constant time, shown from the code itself rather than by a
timing measurement (which a shared machine makes too noisy to fail reliably).

Every module of the production code (lib/, api/) is parsed: no value whose name
speaks of a secret, token, password or key is compared with ==, !=, `in` or
startswith-like methods, all of which stop at the first differing character. The two
places that check credentials are then read for what they must do: the cron check
goes through hmac.compare_digest, the admin check through PyJWT's signature
verification (jwt.decode with the algorithm pinned), which compares HMACs with
hmac.compare_digest itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import jwt.algorithms

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("lib", "api")
SECRET_WORD = re.compile(r"secret|token|passw|api_?key|service_role|credential|signature", re.I)
# The domain's credit "tokens" are money, not credentials: `token_used` names the kind
# of credit a booking spent ("Shared Token"), `mock_discussion_token` a balance.
NOT_A_CREDENTIAL = re.compile(r"^(token_used|token_refund\w*|mock_discussion_token)$")
EARLY_EXIT_METHODS = frozenset({"startswith", "endswith", "find", "index", "count"})


def _names(node: ast.AST) -> Iterator[str]:
    """The identifiers an expression is built from: variables, attributes, and the
    string keys it subscripts with (`headers["x-secret"]`)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id
        elif isinstance(child, ast.Attribute):
            yield child.attr
        elif isinstance(child, ast.Subscript) and isinstance(child.slice, ast.Constant):
            yield str(child.slice.value)


def _secret_named(node: ast.AST) -> list[str]:
    return [
        name
        for name in _names(node)
        if SECRET_WORD.search(name) and not NOT_A_CREDENTIAL.match(name)
    ]


def early_exit_comparisons(source: str, filename: str = "<code>") -> list[str]:
    """Each place in `source` where a secret-named value meets ==, !=, in, not in or a
    startswith-like method: `file:line: code`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                continue
            # `x == None` style checks reveal nothing; they are `is` here anyway.
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value is None for o in operands):
                continue
            if any(_secret_named(o) for o in operands):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EARLY_EXIT_METHODS
            and (_secret_named(node.func.value) or any(_secret_named(a) for a in node.args))
        ):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def _production_files() -> list[Path]:
    return sorted(p for top in PRODUCTION for p in (ROOT / top).rglob("*.py"))


def _function(path: Path, name: str) -> ast.FunctionDef:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{name} is not in {path}")


def _calls(node: ast.AST, dotted: str) -> list[ast.Call]:
    return [
        child
        for child in ast.walk(node)
        if isinstance(child, ast.Call) and ast.unparse(child.func) == dotted
    ]


def test_no_secret_is_compared_with_an_early_exit_operator() -> None:
    files = _production_files()
    assert len(files) > 30  # lib/ and api/ were found
    found = [
        hit
        for path in files
        for hit in early_exit_comparisons(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_the_check_catches_what_it_looks_for() -> None:
    """Negative control: each kind of early-exit comparison is reported."""
    leaky = """
def check(header, settings, request):
    if header == settings().cron_secret: ...
    if request.token != expected: ...
    if token in ALLOWED_TOKENS: ...
    if header.startswith(secret): ...
    if api_key.endswith(suffix): ...
    if headers["x-secret"] == sent: ...
"""
    assert len(early_exit_comparisons(leaky)) == 6
    harmless = """
def check(token, booking):
    if token is None or not token.strip(): ...
    if booking["token_used"] == "Shared Token": ...
    if hmac.compare_digest(token.encode(), secret.encode()): ...
"""
    assert early_exit_comparisons(harmless) == []


def test_the_cron_secret_goes_through_compare_digest() -> None:
    check = _function(ROOT / "lib" / "cron.py", "require_cron_secret")
    [digest] = _calls(check, "hmac.compare_digest")
    assert any("secret" in ast.unparse(arg) for arg in digest.args)
    assert any("token" in ast.unparse(arg) for arg in digest.args)
    api = (ROOT / "api" / "cron" / "sync.py").read_text()
    assert 'require_cron_secret(request.header("Authorization"))' in api


def test_admin_tokens_go_through_pyjwt_with_the_algorithm_pinned() -> None:
    verify = _function(ROOT / "lib" / "admin_auth.py", "verify")
    [decode] = _calls(verify, "jwt.decode")
    keywords = {k.arg: ast.unparse(k.value) for k in decode.keywords}
    # One algorithm, the one the key is for: never "none", never a list the token picks.
    assert keywords["algorithms"] == "[algorithm]"
    assert "audience" in keywords and "options" in keywords
    assert not _calls(verify, "jwt.decode_complete")
    # ... and the verification PyJWT does for HS256 is hmac.compare_digest.
    assert "hmac.compare_digest" in Path(jwt.algorithms.__file__).read_text()
    require = _function(ROOT / "lib" / "admin_auth.py", "require_admin")
    assert _calls(require, "verify")
    assert (ROOT / "lib" / "admin_http.py").read_text().count("require_admin(request)") == 1
