package scope_test

import (
	"fmt"

	"example.com/tokenvendingmachine/internal/scope"
)

func ExampleParse() {
	s, err := scope.Parse("order-*, new-order, order-42-*")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	for _, sel := range s.Selectors() {
		fmt.Printf("%q prefix=%v\n", sel.Topic, sel.Prefix)
	}
	fmt.Println(s.Allows("order-42-status-updated"), s.Allows("orders"))

	_, err = scope.Parse("order-42*")
	fmt.Println(err)
	// Output:
	// new-order,order-*
	// "new-order" prefix=false
	// "order-" prefix=true
	// true false
	// topic list entry 1 "order-42*": topic prefix does not end in a delimiter (- _ . : /)
}

func ExampleTemplate_Expand() {
	tmpl, err := scope.ParseTemplate("user-{sub}-*, announcements")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := tmpl.Expand("1029384756")
	fmt.Println(s, err)

	// A subject holding the delimiter after {sub} could reach into another
	// subject's topics ("user-7-*" covers "user-7-1-…"), so it is refused.
	_, err = tmpl.Expand("7-1")
	fmt.Println(err)
	// Output:
	// announcements,user-1029384756-* <nil>
	// subject is not a valid topic fragment for the template: holds '-', which follows the placeholder in entry 1
}
