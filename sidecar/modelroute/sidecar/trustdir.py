"""Trust anchors looked up in OpenSSL's hashed directory, not parsed from the whole CA bundle at start.

aiohttp makes two TLS contexts when it is imported (verified and unverified), and each makes
OpenSSL 3 parse every certificate of the default CA bundle (``ca-certificates.crt``, ~140
certificates, ~40 ms each on this project's benchmark host): ~20% of the instructions a
one-provider sidecar runs from exec to ready (bench/README.md). The same anchors are also in the
default CA directory as ``<subject hash>.0`` links (Debian's ``update-ca-certificates`` writes
both): with ``SSL_CERT_FILE`` pointing at no certificate and ``SSL_CERT_DIR`` at that directory,
OpenSSL reads only the anchor a handshake needs, by its issuer's hash, when it needs it.

``prefer_directory`` switches to that while the sidecar's modules import (``modelroute.sidecar.prelude``)
only when nobody chose otherwise: neither ``SSL_CERT_FILE`` nor ``SSL_CERT_DIR`` is set, the default
CA directory holds hashed links, and the bundle was not changed after the directory was (an
image that appends its own CA to the bundle by hand, ``cat ca.pem >> ca-certificates.crt``,
keeps loading the bundle). ``restore`` puts the environment back: TLS contexts made later
(by code that reads these variables itself) see what the user set. Opt out: set
``SSL_CERT_FILE`` (e.g. to the bundle) yourself (docs/security.md).

Stdlib only, and imports nothing else of the sidecar: it runs before aiohttp is imported.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, MutableMapping

FILE_ENV = "SSL_CERT_FILE"
DIR_ENV = "SSL_CERT_DIR"
NO_FILE = os.devnull
"""``SSL_CERT_FILE`` while the switch holds: OpenSSL's default paths ignore a file without certificates."""


def has_hashed_links(directory: str) -> bool:
    """True if ``directory`` holds a ``<8 hex digits>.<n>`` entry, the names OpenSSL's directory lookup opens."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                stem, dot, n = entry.name.partition(".")
                if dot and n.isdigit() and len(stem) == 8 and all(c in "0123456789abcdef" for c in stem):
                    return True
    except OSError:
        return False
    return False


def bundle_edited_later(cafile: str | None, capath: str) -> bool:
    """True if the bundle file was modified after the directory last changed (certificates only it may hold)."""
    if not cafile:
        return False
    try:
        return os.stat(cafile).st_mtime_ns > os.stat(capath).st_mtime_ns
    except OSError:  # no bundle: nothing the directory could miss
        return False


def directory_settings(
    environ: MutableMapping[str, str], paths: ssl.DefaultVerifyPaths, *,
    hashed: Callable[[str], bool] = has_hashed_links, edited: Callable[[str | None, str], bool] = bundle_edited_later,
) -> dict[str, str] | None:
    """The variables that switch OpenSSL to directory lookup, or None to leave it as it is."""
    if FILE_ENV in environ or DIR_ENV in environ:  # the user's choice, even an empty one
        return None
    capath = paths.capath
    if not capath or not hashed(capath) or edited(paths.cafile, capath):
        return None
    return {FILE_ENV: NO_FILE, DIR_ENV: capath}


_switched: set[str] = set()


def prefer_directory(environ: MutableMapping[str, str] | None = None, paths: ssl.DefaultVerifyPaths | None = None) -> bool:
    """Switch to directory lookup if ``directory_settings`` says so (until ``restore``); True if switched.

    ``paths``: OpenSSL's defaults unless given (tests give a directory of their own).
    """
    env = os.environ if environ is None else environ
    settings = directory_settings(env, ssl.get_default_verify_paths() if paths is None else paths)
    if settings is None:
        return False
    env.update(settings)
    _switched.update(settings)
    return True


def restore(environ: MutableMapping[str, str] | None = None) -> None:
    """Undo ``prefer_directory``: contexts already made keep the directory; later ones see the user's settings."""
    env = os.environ if environ is None else environ
    for name in _switched:  # set only where the user had set neither
        env.pop(name, None)
    _switched.clear()
