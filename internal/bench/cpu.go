package bench

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime is CPU time (user and system) spent by the bench process, which
// runs the measured code, its baseline and the SAP simulator, and by the
// redis-server. On a machine with few cores CPU per posting is the figure
// that says where throughput goes, and unlike wall time it barely moves
// with other load.
type cpuTime struct{ process, redis time.Duration }

func (c cpuTime) sub(o cpuTime) cpuTime {
	return cpuTime{process: c.process - o.process, redis: c.redis - o.redis}
}

// processCPU is the CPU time this process has spent, user and system.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// microsPer is d in microseconds per one of n.
func microsPer(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}

// cpu reads the process's rusage and the redis-server's INFO cpu.
func (e *env) cpu(ctx context.Context) (cpuTime, error) {
	process, err := processCPU()
	if err != nil {
		return cpuTime{}, err
	}
	info, err := e.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return cpuTime{}, err
	}
	var redisSec float64
	for _, line := range strings.Split(info, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_user" || name == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			redisSec += f
		}
	}
	return cpuTime{
		process: process,
		redis:   time.Duration(redisSec * float64(time.Second)),
	}, nil
}
