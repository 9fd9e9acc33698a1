package block

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSlice: slices of a block verify against its ID and carry exactly
// the block's bytes; a flipped byte anywhere in a slice is caught.
func TestSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 1000, SliceGroup, 3*SliceGroup + 17, MaxSize} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		id := Sum(data)
		ob, ok := Outboard(id, data)
		if !ok {
			t.Fatalf("size %d: outboard root differs from the block ID", size)
		}
		if _, ok := Outboard(Sum([]byte("other")), data); ok {
			t.Fatalf("size %d: outboard accepted under a wrong ID", size)
		}
		for range 20 {
			off := uint64(r.IntN(size))
			n := uint64(1 + r.IntN(min(size-int(off), 3*SliceGroup)))
			lo, alen := AlignSlice(off, n, uint64(size))
			slice, err := ExtractSlice(data[lo:lo+alen], ob, off, n)
			if err != nil {
				t.Fatalf("size %d [%d,+%d): extract: %v", size, off, n, err)
			}
			got, ok := id.VerifySlice(slice, off, n)
			if !ok || !bytes.Equal(got, data[lo:lo+alen]) {
				t.Fatalf("size %d [%d,+%d): verify ok=%v, equal=%v (len %d, want %d)", size, off, n, ok, bytes.Equal(got, data[lo:lo+alen]), len(got), alen)
			}
			bad := bytes.Clone(slice)
			bad[8+r.IntN(len(bad)-8)] ^= 1
			if _, ok := id.VerifySlice(bad, off, n); ok {
				t.Fatalf("size %d [%d,+%d): a corrupt slice verified", size, off, n)
			}
			if _, ok := Sum([]byte("x")).VerifySlice(slice, off, n); ok {
				t.Fatalf("size %d: slice verified against another ID", size)
			}
		}
	}
}
