"""One module per stage; each defines ``register(app)`` adding its typer commands.

Errors derived from :class:`glacierbed.core.errors.GlacierbedError` are shown as one line
(file and problem) by :func:`glacierbed.commands.common.run_cli` instead of a traceback.
"""
