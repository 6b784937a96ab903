package external

// PID returns the running plugin's process id (0 when none).
func PID(m *Model) int {
	if m.p == nil || m.p.cmd.Process == nil {
		return 0
	}
	return m.p.cmd.Process.Pid
}

// Number is number, for tests.
var Number = number
