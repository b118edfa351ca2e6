// The marker for domain errors a person should read. Imports nothing, so every lib/ folder may
// extend it without a cycle.

/**
 * A refusal whose message is safe and useful to show to the person who caused it. The action
 * wrapper (lib/auth/action.ts) turns it into `{ message }`, or, with `field`, into
 * `{ fieldErrors }` (plus `{ message }` when `fieldMessage` gives the field its own words).
 * Any other error is a bug and propagates.
 */
export class UserFacingError extends Error {
  readonly field: string | undefined;
  readonly fieldMessage: string | undefined;

  constructor(message: string, options: { field?: string; fieldMessage?: string } = {}) {
    super(message);
    this.name = "UserFacingError";
    this.field = options.field;
    this.fieldMessage = options.fieldMessage;
  }
}
