// @ts-check
/// <reference lib="dom" />
// The calls about broadcast channels (app/web/routes/channels.ts), each typed with
// what the server takes and answers (app/web/api/channels.ts).

import { api } from "./api.js";

/** @typedef {import("../api_types.ts").AuthorList} AuthorList */
/** @typedef {import("../api_types.ts").AuthorRequest} AuthorRequest */
/** @typedef {import("../api_types.ts").Author} Author */
/** @typedef {import("../api_types.ts").Channel} Channel */
/** @typedef {import("../api_types.ts").ChannelLink} ChannelLink */
/** @typedef {import("../api_types.ts").ChannelList} ChannelList */
/** @typedef {import("../api_types.ts").ChannelRequest} ChannelRequest */
/** @typedef {import("../api_types.ts").ChannelVisibility} ChannelVisibility */
/** @typedef {import("../api_types.ts").FollowRequest} FollowRequest */
/** @typedef {import("../api_types.ts").Post} Post */
/** @typedef {import("../api_types.ts").PostPage} PostPage */
/** @typedef {import("../api_types.ts").PostRequest} PostRequest */
/** @typedef {import("../api_types.ts").SubscriberList} SubscriberList */
/** @typedef {import("../api_types.ts").SubscriberRequest} SubscriberRequest */

const at = encodeURIComponent;

/** @returns {Promise<ChannelList>} */
export const listChannels = () => api("/api/channels");

/**
 * @param {string} id
 * @returns {Promise<Channel>}
 */
export const getChannel = (id) => api(`/api/channels/${at(id)}`);

/**
 * @param {string} title
 * @param {ChannelVisibility} visibility
 * @returns {Promise<Channel>}
 */
export const createChannel = (title, visibility) =>
  api("/api/channels", { json: /** @satisfies {ChannelRequest} */ ({ title, visibility }) });

/**
 * Follows the channel whose link this is.
 * @param {string} link
 * @returns {Promise<Channel>}
 */
export const followChannel = (link) =>
  api("/api/channels/follow", { json: /** @satisfies {FollowRequest} */ ({ link }) });

/**
 * @param {string} id
 * @returns {Promise<{ channel: string }>}
 */
export const unfollowChannel = (id) => api(`/api/channels/${at(id)}/unfollow`, { json: {} });

/**
 * Marks every post of the channel read.
 * @param {string} id
 * @returns {Promise<{ channel: string }>}
 */
export const markChannelRead = (id) => api(`/api/channels/${at(id)}/read`, { json: {} });

/**
 * @param {string} id
 * @returns {Promise<ChannelLink>}
 */
export const channelLink = (id) => api(`/api/channels/${at(id)}/link`);

/**
 * The newest posts, or those older than `before` (the `next` of the page before).
 * @param {string} id
 * @param {string | null} [before]
 * @returns {Promise<PostPage>}
 */
export const listPosts = (id, before = null) =>
  api(`/api/channels/${at(id)}/posts${before ? `?before=${at(before)}` : ""}`);

/**
 * @param {string} id
 * @param {PostRequest} post
 * @returns {Promise<Post>}
 */
export const publishPost = (id, post) => api(`/api/channels/${at(id)}/posts`, { json: post });

/**
 * @param {string} id
 * @returns {Promise<AuthorList>}
 */
export const listAuthors = (id) => api(`/api/channels/${at(id)}/authors`);

/**
 * @param {string} id
 * @param {AuthorRequest} author
 * @returns {Promise<Author>}
 */
export const addAuthor = (id, author) => api(`/api/channels/${at(id)}/authors`, { json: author });

/**
 * @param {string} id
 * @param {string} author
 * @returns {Promise<AuthorList>}
 */
export const removeAuthor = (id, author) =>
  api(`/api/channels/${at(id)}/authors/${at(author)}`, { method: "DELETE" });

/**
 * @param {string} id
 * @returns {Promise<SubscriberList>}
 */
export const listSubscribers = (id) => api(`/api/channels/${at(id)}/subscribers`);

/**
 * @param {string} id
 * @param {string} contact
 * @returns {Promise<SubscriberList>}
 */
export const addSubscriber = (id, contact) =>
  api(`/api/channels/${at(id)}/subscribers`, {
    json: /** @satisfies {SubscriberRequest} */ ({ contact }),
  });

/**
 * @param {string} id
 * @param {string} contact
 * @returns {Promise<SubscriberList>}
 */
export const removeSubscriber = (id, contact) =>
  api(`/api/channels/${at(id)}/subscribers/${at(contact)}`, { method: "DELETE" });
