/**
 * The JSON the web app's API (`server.ts`) answers with and accepts, as the page
 * receives it: one contract for both sides. The page (`static/*.js`) imports
 * these types in JSDoc and `deno check` holds it to them; the server is to
 * annotate its answers with them too.
 *
 * These are wire types: a date is the ISO 8601 text `JSON.stringify` makes of a
 * `Date`, and nothing here imports the domain modules, so that checking the page
 * does not pull in the server.
 *
 * Every error answer is an `ErrorBody`. The types live by area in `api/`; new ones go
 * in the file of their area.
 *
 * @module
 */

export type * from "./api/common.ts";
export type * from "./api/session.ts";
export type * from "./api/state.ts";
export type * from "./api/mail.ts";
export type * from "./api/people.ts";
export type * from "./api/activity.ts";
export type * from "./api/settings.ts";
export type * from "./api/events.ts";
export type * from "./api/backup.ts";
export type * from "./api/channels.ts";
