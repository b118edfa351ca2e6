import type { Address } from "nodemailer";
import { toAddress } from "./address";
import { MAX_RECIPIENTS, MAX_SUBJECT_LENGTH, type SendRequest } from "./message";
import { codePointLength, hasHeaderControl } from "./text";

// A validated request as nodemailer takes it. Checks again what validation promised, so a caller
// that skipped it fails loudly instead of sending a header it did not check.

/** The message fields handed to nodemailer. `from` is set by the send chokepoint only. */
export type NodemailerFields = {
  to: Address[];
  cc: Address[];
  bcc: Address[];
  replyTo?: Address;
  subject: string;
  text?: string;
  html?: string;
};

/**
 * The nodemailer message fields, built only from a validated request. Addresses go in as
 * objects so nodemailer never re-parses a string; there is deliberately no way to pass
 * `from`, `headers`, `envelope`, `attachments` or prepared header values.
 * Throws on a value that did not come from `parseSendRequest`: that is a programming error.
 */
export function toNodemailerFields(value: SendRequest): NodemailerFields {
  // SendRequest is a plain type anyone can build, so the header-bearing parts are checked
  // again here, at the last step before nodemailer.
  if (hasHeaderControl(value.subject) || codePointLength(value.subject) > MAX_SUBJECT_LENGTH) {
    throw new TypeError("toNodemailerFields: subject was not validated");
  }
  if (value.to.length + value.cc.length + value.bcc.length > MAX_RECIPIENTS) {
    throw new TypeError("toNodemailerFields: recipients were not validated");
  }
  const fields: NodemailerFields = {
    to: value.to.map(toAddress),
    cc: value.cc.map(toAddress),
    bcc: value.bcc.map(toAddress),
    subject: value.subject,
  };
  if (value.replyTo !== undefined) fields.replyTo = toAddress(value.replyTo);
  if (value.text !== undefined) fields.text = value.text;
  if (value.html !== undefined) fields.html = value.html;
  return fields;
}
