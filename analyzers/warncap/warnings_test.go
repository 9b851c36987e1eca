package warncap

import (
	"strings"
	"testing"

	"github.com/assayhq/assay/plugins/sdk"
)

type recorder struct{ got []sdk.Warning }

func (r *recorder) Package(sdk.Package) error { return nil }
func (r *recorder) Finding(sdk.Finding) error { return nil }
func (r *recorder) Warning(w sdk.Warning) error {
	r.got = append(r.got, w)
	return nil
}

func TestCappedSendsMaxThenCounts(t *testing.T) {
	r := &recorder{}
	c := Capped{Emit: r}
	for i := 0; i < Max+7; i++ {
		if err := c.Warn("/p\xff", "bad %d", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(r.got) != Max+1 {
		t.Fatalf("%d warnings sent, want %d", len(r.got), Max+1)
	}
	if r.got[0].Path != "/p\uFFFD" || r.got[0].Message != "bad 0" {
		t.Fatalf("first warning %+v", r.got[0])
	}
	if last := r.got[Max].Message; !strings.Contains(last, "7 more") {
		t.Fatalf("summary %q", last)
	}
	r2 := &recorder{}
	c2 := Capped{Emit: r2}
	c2.Warn("", "one")
	c2.Flush()
	if len(r2.got) != 1 {
		t.Fatalf("a summary was sent with nothing suppressed: %+v", r2.got)
	}
}
