"""Router mode (pyllama-server without a model): a child pyllama-server per model,
requests routed by the model they name. presets.py (which models, with which flags),
instances.py (the child processes), proxy.py (relaying), app.py (the routes),
child.py (a child ends with its router)."""
