"""The snapshot machinery: the pipeline that stores captured saves in the background (queues, fence,
backlog, flush), its workers and their steps, dedupe, retention, the stat cache, and `autolog sync`."""
