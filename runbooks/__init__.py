"""Runbooks: bundled Markdown procedures plus their model, loader, classifier, runner and journal."""
