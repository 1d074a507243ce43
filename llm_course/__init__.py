"""The course's application: ``llm-course`` and the pipeline above the chapters.

Layers, from the bottom: ``shared`` (plumbing and the import surface, no chapter code),
the chapter modules (``chXX_topic/topic.py``, exported from the notebooks), and this
package, which imports the chapters by their public names like any reader's script
(docs/ARCHITECTURE.md).
"""


class PipelineError(RuntimeError):
    """A stage cannot go on (bad input or a failed check); the message says what to do."""
