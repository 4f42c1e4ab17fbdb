"""One module per paper/notebook: the experiment's protocol as functions that take specs and
return DataFrames or results. A notebook calls its paper module plus `lib.plotting` and
`lib.reporting`, nothing else."""
