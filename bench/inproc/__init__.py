"""In-process scenarios: the runtime without HTTP, beside bare trio in the same run."""
