// Package pii keeps personal data forgettable in an append-only store
// (crypto-shredding): every personal field is sealed with its customer's data
// key (AES-256-GCM) before it is appended, data keys are stored wrapped by a
// master key (MasterKey: configured keys, or a KMS), and an erasure deletes
// the customer's data key so that no reader can open those fields again.
// Readers open sealed values with Keys.Open or Keys.OpenJSON and show
// order.Erased where the key is gone.
//
// DESIGN.md argues the model: what is personal, the sealed format and its
// additional data, why keys are not cached, rotation, what an erasure leaves
// in the database files, and the roles.
package pii
