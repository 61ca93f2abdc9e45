"""Bearer-token authentication of the inference service.

The token comes from a file (``--token-file``; the first line, surrounding whitespace removed)
or the environment variable ``ROBOMR_SERVICE_TOKEN``. Running without a token is refused unless
the operator asks for it explicitly (``--no-auth``) *and* the service binds a loopback address
only, so an open endpoint can never be reached from another machine. Tokens are compared in
constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "ROBOMR_SERVICE_TOKEN"
MIN_TOKEN_CHARS = 16


class AuthError(ValueError):
    """No usable token, or an unauthenticated service on a non-loopback address."""


def load_token(token_file: str | Path | None, env: Mapping[str, str] | None = None) -> str | None:
    """The token from ``token_file`` (if given) or ``$ROBOMR_SERVICE_TOKEN``; None if neither.

    Raises:
        AuthError: the file cannot be read, or the token is shorter than 16 characters or
            contains whitespace.
    """
    env = os.environ if env is None else env
    if token_file:
        try:
            lines = Path(token_file).read_text().splitlines()
        except OSError as err:
            raise AuthError(f"cannot read the token file {token_file}: {err.strerror}") from err
        token, source = (lines[0].strip() if lines else ""), str(token_file)
    elif env.get(TOKEN_ENV):
        token, source = env[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise AuthError(
            f"the token in {source} must be at least {MIN_TOKEN_CHARS} characters without spaces"
        )
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_setup(host: str, token: str | None, allow_no_token: bool) -> None:
    """Refuses an unauthenticated service unless asked for and bound to loopback only.

    Raises:
        AuthError: no token and not (``allow_no_token`` and a loopback ``host``).
    """
    if token is not None:
        return
    if not allow_no_token:
        raise AuthError(
            f"no token: pass --token-file FILE or set ${TOKEN_ENV} "
            "(or --no-auth, allowed on a loopback address only)"
        )
    if not is_loopback(host):
        raise AuthError(f"--no-auth is allowed only on a loopback address, not on {host!r}")


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (always true without one)."""
    if token is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())
