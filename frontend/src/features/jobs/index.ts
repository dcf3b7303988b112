export { isActive, useJobs, type Job } from "./api/jobs";
export { AuditTrust } from "./components/AuditTrust";
export { JobsList } from "./components/JobsList";
export { JobStatus } from "./components/JobStatus";
export { LaunchAuditForm } from "./components/LaunchAuditForm";
