"""``nascli webui``: a local, read-only web UI and JSON API over the experiment stores.

- ``api``: the JSON API as plain functions (a path and a query in, a status and data out); it reads
  through ``nascli.experiment.report`` / ``store`` only, so it returns what the CLI's ``--json``
  commands print.
- ``cache``: encoded bodies of costly reads, reused until the store changes (``data_version``).
- ``runlog``: the reader of one-shot run logs (``oneshot.jsonl``) for the one-shot run view.
- ``security``: the token, Host-header and response-header rules.
- ``server``: the ``ThreadingHTTPServer`` that serves the API and ``static/`` (the page).

Nothing here imports torch; nothing here writes to an experiment.
"""
