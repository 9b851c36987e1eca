package rpm

import "testing"

func TestParseSourceRPM(t *testing.T) {
	for _, tc := range []struct {
		in        string
		name, ver string
		ok        bool
	}{
		{"openssl-3.0.7-27.el9.src.rpm", "openssl", "3.0.7-27.el9", true},
		{"gcc11-11.2.1+git610-1.3.9.src.rpm", "gcc11", "11.2.1+git610-1.3.9", true},
		{"assay-tools-0.9~rc1-2.src.rpm", "assay-tools", "0.9~rc1-2", true},
		{"system-user-root-20190513-3.3.1.src.rpm", "system-user-root", "20190513-3.3.1", true},
		{"nvidia-driver-550.54-1.nosrc.rpm", "nvidia-driver", "550.54-1", true},
		{"openssl-3.0.7-27.el9.x86_64.rpm", "", "", false},
		{"openssl-3.0.7.src.rpm", "", "", false},
		{"-3.0.7-27.src.rpm", "", "", false},
		{"openssl--27.src.rpm", "", "", false},
		{"openssl-3.0.7-.src.rpm", "", "", false},
		{".src.rpm", "", "", false},
		{"(none)", "", "", false},
		{"", "", "", false},
		{"a b-1-1.src.rpm", "", "", false},
		{"../../x-1-1.src.rpm", "", "", false},
		{"x-1-1\x00.src.rpm", "", "", false},
	} {
		name, ver, ok := ParseSourceRPM(tc.in)
		if name != tc.name || ver != tc.ver || ok != tc.ok {
			t.Errorf("ParseSourceRPM(%q) = %q, %q, %v; want %q, %q, %v", tc.in, name, ver, ok, tc.name, tc.ver, tc.ok)
		}
	}
}
