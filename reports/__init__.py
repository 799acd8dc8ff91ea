"""Reports: verdict and history rendered as a self-contained HTML timeline."""
