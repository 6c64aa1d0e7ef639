"""ClearML's `clearml.utilities` module path, kept so that scripts importing from it run unchanged.

Only what ClearML's examples import from here is provided (plotly_reporter.SeriesInfo); autolog's own
code lives in modules named after what they do.
"""
