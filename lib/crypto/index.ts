import "server-only";

export { type DemoKeyring, loadOrCreateDemoKeyring } from "./demo-keyring";
export {
  DecryptionError,
  type DecryptionFailure,
  decryptField,
  encryptField,
  type FieldContext,
  isEncryptedValue,
  keyIdOf,
  needsReencryption,
  reencryptField,
} from "./envelope";
export {
  generateKeySpec,
  type Keyring,
  type KeyringEntry,
  KeyringError,
  parseKeyring,
} from "./keyring";
