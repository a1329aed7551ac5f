package order

// MaxCustomerIDLen is the longest customer id an order can carry, in
// characters (not bytes). The command API refuses a longer one, so the query
// API and the hub answer a lookup of one as a client error: it cannot exist.
const MaxCustomerIDLen = 100
