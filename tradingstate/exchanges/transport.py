"""The HTTP session each ccxt client sends its calls through.

ccxt calls ``session.request(method, url, data=…, headers=…, timeout=…, proxies=…,
verify=…, files=…)`` once per venue call. ``requests.Session.request`` builds a
``Request``, merges it with the session (cookies, hooks, headers, parameters, auth,
environment settings) and prepares it: about a third of the Python a pass spends on HTTP
in the 1,000-account bench, for a call that has none of those. ``LeanSession`` prepares
such a plain call itself, with requests' own steps (method, URL, headers over the
session's, body), and hands it to ``Session.send`` as ``request`` would: the same
adapter, redirects, cookie extraction, exceptions and ``Response``. A call with anything
else (proxies, files, cookies, auth, hooks, parameters, a client certificate, streaming,
the environment's settings) goes the ``requests`` way unchanged.
"""

from __future__ import annotations

import requests
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict


class LeanSession(requests.Session):
    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        cookies=None,
        files=None,
        auth=None,
        timeout=None,
        allow_redirects=True,
        proxies=None,
        hooks=None,
        stream=None,
        verify=None,
        cert=None,
        json=None,
    ):
        if not self._plain(
            url, params, data, cookies, files, auth, proxies, hooks, stream, cert, json
        ):
            return super().request(
                method, url, params=params, data=data, headers=headers, cookies=cookies,
                files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert, json=json,
            )  # fmt: skip
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method.upper())
        prepared.prepare_url(url, None)
        merged = CaseInsensitiveDict(self.headers)  # the session's, the call's over them
        for name, value in (headers or {}).items():
            if value is None:
                merged.pop(name, None)  # as requests' merge: None removes a session header
            else:
                merged[name] = value
        prepared.prepare_headers(merged)
        prepared.prepare_cookies(RequestsCookieJar())  # none: ccxt clears them every call
        prepared.prepare_body(data, None, None)
        prepared.prepare_hooks({})
        return self.send(
            prepared,
            timeout=timeout,
            allow_redirects=allow_redirects,
            stream=False,  # a plain call: neither it nor the session streams
            verify=self.verify if verify is None else verify,
            cert=None,
            proxies={},
        )

    def _plain(self, url, params, data, cookies, files, auth, proxies, hooks, stream, cert, json):
        """Nothing in the call or the session that ``requests``' merging would act on."""
        return not (
            params or cookies or files or auth or proxies or hooks or stream or cert
            or json is not None
            or not isinstance(url, str)
            or not (data is None or isinstance(data, bytes | str))
            or self.trust_env or self.auth or self.proxies or self.params or self.cert
            or self.stream or len(self.cookies) or any(self.hooks.values())
        )  # fmt: skip
