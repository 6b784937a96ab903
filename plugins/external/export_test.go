package external

// PID returns the running plugin's process id (0 when none).
func PID(m *Model) int { return m.ProcessID() }

// Number is number, for tests.
var Number = number

// CheckDescription is (*Description).check, for tests.
func CheckDescription(d *Description) error { return d.check() }
