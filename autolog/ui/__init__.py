"""`autolog ui`: a read-only web app over the store the SDK writes (optional extra: pip install autolog[ui]).

Nothing here is imported by `import autolog` or `Task.init()`; the CLI imports `server` when the command
runs. Modules, top to bottom:

    server.py         the command: bind rules, the printed URL, uvicorn
    app.py            the Starlette app: routes, pages, one place that turns errors into responses
    security.py       the token (header, ?token= then cookie), the Host check, secrets taken out of rows
    api.py            the JSON handlers (the shapes of ui_contract.md / the README's API section)
    task_list.py      the task list: filters and sorts as SQL, keyset paging
    queries.py        the other read-only queries: a task's page, a model's page
    rows.py           records as the API's JSON rows
    lineage_graph.py  the graph around a task or model: upstream and downstream, batched per level
    previews.py       artifact previews (image, table, JSON, text)
    downloads.py      snapshot and artifact bytes, verified against the recorded digest as they go out
"""
