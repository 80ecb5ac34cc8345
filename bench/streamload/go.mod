module modelroute.dev/bench/streamload

go 1.26
