module modelroute.dev/build/pause

go 1.24.0
