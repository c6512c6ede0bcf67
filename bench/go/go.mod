module scratchd/bench/go

go 1.21
