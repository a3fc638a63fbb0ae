"""Reading results back: the results tables, the report page, the
embedding analysis, the plots and the training curves."""
