"""Locustfiles shipped with the harness (``locust -f`` takes their path).

They live in their own folder because Locust puts a locustfile's folder at the front of
``sys.path`` while it imports it: from ``harness/bench`` itself, the bench's ``html.py``
would hide the standard library's ``html``.
"""
