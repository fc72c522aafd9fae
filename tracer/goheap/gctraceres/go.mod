module gctrace/gctraceres

go 1.19
