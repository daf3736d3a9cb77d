/**
 * The web API's people: contacts, invitations (with their QR codes, made again on
 * request while pending) and accepting one.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
// @deno-types="@types/qrcode"
import QRCode from "qrcode";
import { invitationText } from "../../core/invitations.ts";
import { invitationQrCodes, splitInvitation } from "../../core/protocol/invitation.ts";
import { fromUser, HttpError } from "../errors.ts";
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
    const fields = await jsonFields(c.req);
    const name = textField(fields, "name");
    const format = fields.format ?? 2;
    if (format !== 1 && format !== 2) {
      throw new HttpError(400, `An invitation's format is 1 or 2, not ${JSON.stringify(format)}`);
    }
    const invitation = await fromUser(() =>
      node.pairing.createInvitation({ contactName: name, format })
    );
    return c.json(await withQrCodes(invitation));
  });
  // The text of a pending invitation again, to copy or show as a QR code.
  app.get(
    "/api/invitations/:id",
    async (c) =>
      c.json(
        answer<api.CreatedInvitation>(
          await withQrCodes(await invitationText(node.ctx, node.identity, c.req.param("id"))),
        ),
      ),
  );
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

/**
 * An invitation with its QR codes: one for a version 2 text, at error correction M
 * (15% of the code may be lost or smudged); a version 1 text keeps its parts, each
 * a code at level L, as before.
 */
async function withQrCodes<T extends { readonly text: string }>(invitation: T) {
  const codes = invitationQrCodes(invitation.text);
  const parts = codes.length === 1 ? [invitation.text] : splitInvitation(invitation.text);
  const qrCodes = await Promise.all(
    codes.map((segments) =>
      QRCode.toString([...segments], {
        type: "svg",
        errorCorrectionLevel: codes.length === 1 ? "M" : "L",
        margin: 2,
      })
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
