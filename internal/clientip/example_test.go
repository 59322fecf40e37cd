package clientip_test

import (
	"fmt"

	"example.com/tokenvendingmachine/internal/clientip"
)

func ExampleResolve() {
	// A caller wrote the first entry; Google's front end appended the
	// address it saw.
	forwarded := []string{"1.1.1.1, 2001:db8:1:2::7"}
	res := clientip.Resolve(forwarded, "169.254.1.1:41234", 1)
	fmt.Println(res.Key, res.Source, res.Rejected)

	// A junk entry in the chosen position falls back to the connection.
	res = clientip.Resolve([]string{"unknown"}, "169.254.1.1:41234", 1)
	fmt.Println(res.Key, res.Source, res.Rejected)
	// Output:
	// 2001:db8:1:2::/64 forwarded false
	// 169.254.1.1 remote true
}
