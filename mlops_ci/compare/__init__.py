"""Compare: resolve the baseline, snapshot both revisions and diff metrics, params and plots."""
