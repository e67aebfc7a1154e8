"""Under DEBUG=0 a real server serves the admin's CSS and the Swagger UI's assets (whitenoise).

Given a fresh install (`migrate`, `collectstatic`) and gunicorn with DEBUG=0, the pages link
their assets by hashed names from the manifest, and each of those answers 200 with the
asset's content type: the console is styled and `/api/docs/` works.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def assets(html: str, suffix: str) -> list[str]:
    return sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+\.' + suffix + r')"', html)))


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn not installed (make install)")
def test_debug_off_serves_admin_css_and_swagger_assets(tmp_path):
    # given: a fresh install with DEBUG=0 and collected static files
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TRADINGSTATE_LOG_DIR": str(tmp_path / "logs"),
        "TRADINGSTATE_STATIC_ROOT": str(tmp_path / "static"),
        "DEBUG": "0",
        "SECRET_KEY": "s" * 64,
        "SECURE_SSL_REDIRECT": "0",
    }
    for args in (["migrate", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                       timeout=300)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [str(GUNICORN), "tradingstate.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/api/v1/health/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # answering (503 before a worker beat is still an answer)
            except OSError:
                time.sleep(0.2)
        # when: the login page and the Swagger UI are fetched
        status, _, login = get(base + "/admin/login/")
        assert status == 200
        status, _, docs = get(base + "/api/docs/")
        assert status == 200
        css = assets(login.decode(), "css")
        swagger = assets(docs.decode(), "(?:js|css)")

        # then: every asset they link exists under its hashed name, with its content type
        assert any(re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", u) for u in css), css
        assert any("swagger-ui-dist" in u and u.endswith(".js") for u in swagger), swagger
        assert any("swagger-ui-dist" in u and u.endswith(".css") for u in swagger), swagger
        for url in css + swagger:
            status, ctype, body = get(base + url)
            assert status == 200, url
            assert body, url
            kind = "text/css" if url.endswith(".css") else "javascript"
            assert kind in ctype, (url, ctype)
        # the unhashed name answers too (bookmarks, old pages), with caching headers on hashed
        assert get(base + "/static/admin/css/base.css")[0] == 200
        with urllib.request.urlopen(base + css[0], timeout=20) as resp:
            assert "max-age=315360000" in resp.headers.get("Cache-Control", "")
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert "Traceback" not in out, out
