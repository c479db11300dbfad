"""Deprecated: moved to `grutext.tasks.classification.transfer`; this re-export goes in a later release."""

from grutext.tasks.classification.transfer import TransferSource, load_transfer_source

__all__ = ["TransferSource", "load_transfer_source"]
