/**
 * The web API's people: contacts, invitations (with their QR codes) and accepting one.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { splitInvitation } from "../../core/protocol/invitation.ts";
import { fromUser } from "../errors.ts";
import { jsonFields, requiredText, textField } from "../input.ts";
import type * as api from "../api_types.ts";
import { answer, type RouteContext } from "./context.ts";

/** Adds the routes to `app`. */
export function peopleRoutes(app: Hono, web: RouteContext): void {
  const node = web.node;
  // Contacts and pairing
  app.get("/api/contacts", (c) => c.json(answer<api.Contact[]>(node.contacts.list())));
  app.post("/api/contacts/:id/rename", web.small, async (c) => {
    const name = requiredText(await jsonFields(c.req), "name");
    const contact = node.contacts.find(c.req.param("id")); // unknown: a 404
    return c.json(await fromUser(() => node.contacts.rename(contact.id, name)));
  });
  app.post("/api/contacts/:id/block", (c) => c.json(node.contacts.block(c.req.param("id"))));
  app.post("/api/contacts/:id/unblock", (c) => c.json(node.contacts.unblock(c.req.param("id"))));
  app.post("/api/contacts/:id/repair", async (c) => {
    const contact = node.contacts.find(c.req.param("id")); // unknown: a 404
    return c.json(
      await withQrCodes(await fromUser(() => node.pairing.repairInvitation(contact.id))),
    );
  });
  app.get(
    "/api/invitations",
    (c) => c.json(answer<api.Invitation[]>(node.pairing.listInvitations())),
  );
  app.post("/api/invitations", web.small, async (c) => {
    const name = textField(await jsonFields(c.req), "name");
    const invitation = await fromUser(() => node.pairing.createInvitation({ contactName: name }));
    return c.json(await withQrCodes(invitation));
  });
  app.post(
    "/api/invitations/:id/revoke",
    async (c) => c.json(await fromUser(() => node.pairing.revokeInvitation(c.req.param("id")))),
  );
  app.post("/api/accept", web.small, async (c) => {
    const fields = await jsonFields(c.req);
    const text = requiredText(fields, "text");
    const name = textField(fields, "name");
    return c.json(
      answer<api.Contact>(await fromUser(() => node.pairing.acceptInvitation(text, { name }))),
    );
  });
}

/** An invitation with its text in parts that each fit a QR code, and those codes. */
async function withQrCodes<T extends { readonly text: string }>(invitation: T) {
  const parts = splitInvitation(invitation.text);
  const qrCodes = await Promise.all(
    parts.map((part) =>
      QRCode.toString(part, { type: "svg", errorCorrectionLevel: "L", margin: 2 })
    ),
  );
  return {
    ...invitation,
    parts,
    qrCodes: qrCodes.map((svg) =>
      `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}`
    ),
  };
}
