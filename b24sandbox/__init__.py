"""A local stand-in Bitrix24 portal that speaks the real wire protocol.

One process hosts the OAuth server, one or more portals (REST API, web pages that frame
the app, a BX24.js stand-in) and a control API under ``/_sandbox/`` for tests.
"""
