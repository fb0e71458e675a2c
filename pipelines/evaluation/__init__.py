"""Evaluation: a checkpoint's test windows scored against the base nowcasts (``evaluate``), the
windows an evaluation runs on (``windows``) and leave-one-event-out cross-validation
(``cross_validation``).

The scores themselves live in ``pipelines.verification`` (one scoring code for every method).
"""
