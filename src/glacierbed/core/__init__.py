"""Ground floor: errors, configs, atomic writes, threads, glaciology, metrics, fills, figure helpers.

Nothing here imports from another stage of glacierbed.
"""
