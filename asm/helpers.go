package asm

// HelperFunc is the number of a kernel helper function, the immediate of a
// helper call (enum bpf_func_id in include/uapi/linux/bpf.h). The kernel
// froze the list at bpf_cgrp_storage_delete (Linux 6.2); new kernel
// functions are kfuncs, called with CallKfunc. Which helpers a program may
// call depends on its type: socket filters get the base set
// (bpf_map_lookup_elem, bpf_get_prandom_u32, bpf_ktime_get_ns, ...) and
// bpf_skb_load_bytes, bpf_skb_load_bytes_relative, bpf_get_socket_cookie and
// bpf_get_socket_uid.
type HelperFunc int32

// The helper functions, in the kernel's order (Linux 6.18).
const (
	FnUnspec                     HelperFunc = 0   // bpf_unspec
	FnMapLookupElem              HelperFunc = 1   // bpf_map_lookup_elem
	FnMapUpdateElem              HelperFunc = 2   // bpf_map_update_elem
	FnMapDeleteElem              HelperFunc = 3   // bpf_map_delete_elem
	FnProbeRead                  HelperFunc = 4   // bpf_probe_read
	FnKtimeGetNs                 HelperFunc = 5   // bpf_ktime_get_ns
	FnTracePrintk                HelperFunc = 6   // bpf_trace_printk
	FnGetPrandomU32              HelperFunc = 7   // bpf_get_prandom_u32
	FnGetSmpProcessorID          HelperFunc = 8   // bpf_get_smp_processor_id
	FnSkbStoreBytes              HelperFunc = 9   // bpf_skb_store_bytes
	FnL3CsumReplace              HelperFunc = 10  // bpf_l3_csum_replace
	FnL4CsumReplace              HelperFunc = 11  // bpf_l4_csum_replace
	FnTailCall                   HelperFunc = 12  // bpf_tail_call
	FnCloneRedirect              HelperFunc = 13  // bpf_clone_redirect
	FnGetCurrentPidTgid          HelperFunc = 14  // bpf_get_current_pid_tgid
	FnGetCurrentUIDGid           HelperFunc = 15  // bpf_get_current_uid_gid
	FnGetCurrentComm             HelperFunc = 16  // bpf_get_current_comm
	FnGetCgroupClassid           HelperFunc = 17  // bpf_get_cgroup_classid
	FnSkbVlanPush                HelperFunc = 18  // bpf_skb_vlan_push
	FnSkbVlanPop                 HelperFunc = 19  // bpf_skb_vlan_pop
	FnSkbGetTunnelKey            HelperFunc = 20  // bpf_skb_get_tunnel_key
	FnSkbSetTunnelKey            HelperFunc = 21  // bpf_skb_set_tunnel_key
	FnPerfEventRead              HelperFunc = 22  // bpf_perf_event_read
	FnRedirect                   HelperFunc = 23  // bpf_redirect
	FnGetRouteRealm              HelperFunc = 24  // bpf_get_route_realm
	FnPerfEventOutput            HelperFunc = 25  // bpf_perf_event_output
	FnSkbLoadBytes               HelperFunc = 26  // bpf_skb_load_bytes
	FnGetStackid                 HelperFunc = 27  // bpf_get_stackid
	FnCsumDiff                   HelperFunc = 28  // bpf_csum_diff
	FnSkbGetTunnelOpt            HelperFunc = 29  // bpf_skb_get_tunnel_opt
	FnSkbSetTunnelOpt            HelperFunc = 30  // bpf_skb_set_tunnel_opt
	FnSkbChangeProto             HelperFunc = 31  // bpf_skb_change_proto
	FnSkbChangeType              HelperFunc = 32  // bpf_skb_change_type
	FnSkbUnderCgroup             HelperFunc = 33  // bpf_skb_under_cgroup
	FnGetHashRecalc              HelperFunc = 34  // bpf_get_hash_recalc
	FnGetCurrentTask             HelperFunc = 35  // bpf_get_current_task
	FnProbeWriteUser             HelperFunc = 36  // bpf_probe_write_user
	FnCurrentTaskUnderCgroup     HelperFunc = 37  // bpf_current_task_under_cgroup
	FnSkbChangeTail              HelperFunc = 38  // bpf_skb_change_tail
	FnSkbPullData                HelperFunc = 39  // bpf_skb_pull_data
	FnCsumUpdate                 HelperFunc = 40  // bpf_csum_update
	FnSetHashInvalid             HelperFunc = 41  // bpf_set_hash_invalid
	FnGetNumaNodeID              HelperFunc = 42  // bpf_get_numa_node_id
	FnSkbChangeHead              HelperFunc = 43  // bpf_skb_change_head
	FnXDPAdjustHead              HelperFunc = 44  // bpf_xdp_adjust_head
	FnProbeReadStr               HelperFunc = 45  // bpf_probe_read_str
	FnGetSocketCookie            HelperFunc = 46  // bpf_get_socket_cookie
	FnGetSocketUID               HelperFunc = 47  // bpf_get_socket_uid
	FnSetHash                    HelperFunc = 48  // bpf_set_hash
	FnSetsockopt                 HelperFunc = 49  // bpf_setsockopt
	FnSkbAdjustRoom              HelperFunc = 50  // bpf_skb_adjust_room
	FnRedirectMap                HelperFunc = 51  // bpf_redirect_map
	FnSkRedirectMap              HelperFunc = 52  // bpf_sk_redirect_map
	FnSockMapUpdate              HelperFunc = 53  // bpf_sock_map_update
	FnXDPAdjustMeta              HelperFunc = 54  // bpf_xdp_adjust_meta
	FnPerfEventReadValue         HelperFunc = 55  // bpf_perf_event_read_value
	FnPerfProgReadValue          HelperFunc = 56  // bpf_perf_prog_read_value
	FnGetsockopt                 HelperFunc = 57  // bpf_getsockopt
	FnOverrideReturn             HelperFunc = 58  // bpf_override_return
	FnSockOpsCbFlagsSet          HelperFunc = 59  // bpf_sock_ops_cb_flags_set
	FnMsgRedirectMap             HelperFunc = 60  // bpf_msg_redirect_map
	FnMsgApplyBytes              HelperFunc = 61  // bpf_msg_apply_bytes
	FnMsgCorkBytes               HelperFunc = 62  // bpf_msg_cork_bytes
	FnMsgPullData                HelperFunc = 63  // bpf_msg_pull_data
	FnBind                       HelperFunc = 64  // bpf_bind
	FnXDPAdjustTail              HelperFunc = 65  // bpf_xdp_adjust_tail
	FnSkbGetXfrmState            HelperFunc = 66  // bpf_skb_get_xfrm_state
	FnGetStack                   HelperFunc = 67  // bpf_get_stack
	FnSkbLoadBytesRelative       HelperFunc = 68  // bpf_skb_load_bytes_relative
	FnFibLookup                  HelperFunc = 69  // bpf_fib_lookup
	FnSockHashUpdate             HelperFunc = 70  // bpf_sock_hash_update
	FnMsgRedirectHash            HelperFunc = 71  // bpf_msg_redirect_hash
	FnSkRedirectHash             HelperFunc = 72  // bpf_sk_redirect_hash
	FnLwtPushEncap               HelperFunc = 73  // bpf_lwt_push_encap
	FnLwtSeg6StoreBytes          HelperFunc = 74  // bpf_lwt_seg6_store_bytes
	FnLwtSeg6AdjustSrh           HelperFunc = 75  // bpf_lwt_seg6_adjust_srh
	FnLwtSeg6Action              HelperFunc = 76  // bpf_lwt_seg6_action
	FnRcRepeat                   HelperFunc = 77  // bpf_rc_repeat
	FnRcKeydown                  HelperFunc = 78  // bpf_rc_keydown
	FnSkbCgroupID                HelperFunc = 79  // bpf_skb_cgroup_id
	FnGetCurrentCgroupID         HelperFunc = 80  // bpf_get_current_cgroup_id
	FnGetLocalStorage            HelperFunc = 81  // bpf_get_local_storage
	FnSkSelectReuseport          HelperFunc = 82  // bpf_sk_select_reuseport
	FnSkbAncestorCgroupID        HelperFunc = 83  // bpf_skb_ancestor_cgroup_id
	FnSkLookupTCP                HelperFunc = 84  // bpf_sk_lookup_tcp
	FnSkLookupUDP                HelperFunc = 85  // bpf_sk_lookup_udp
	FnSkRelease                  HelperFunc = 86  // bpf_sk_release
	FnMapPushElem                HelperFunc = 87  // bpf_map_push_elem
	FnMapPopElem                 HelperFunc = 88  // bpf_map_pop_elem
	FnMapPeekElem                HelperFunc = 89  // bpf_map_peek_elem
	FnMsgPushData                HelperFunc = 90  // bpf_msg_push_data
	FnMsgPopData                 HelperFunc = 91  // bpf_msg_pop_data
	FnRcPointerRel               HelperFunc = 92  // bpf_rc_pointer_rel
	FnSpinLock                   HelperFunc = 93  // bpf_spin_lock
	FnSpinUnlock                 HelperFunc = 94  // bpf_spin_unlock
	FnSkFullsock                 HelperFunc = 95  // bpf_sk_fullsock
	FnTCPSock                    HelperFunc = 96  // bpf_tcp_sock
	FnSkbEcnSetCe                HelperFunc = 97  // bpf_skb_ecn_set_ce
	FnGetListenerSock            HelperFunc = 98  // bpf_get_listener_sock
	FnSkcLookupTCP               HelperFunc = 99  // bpf_skc_lookup_tcp
	FnTCPCheckSyncookie          HelperFunc = 100 // bpf_tcp_check_syncookie
	FnSysctlGetName              HelperFunc = 101 // bpf_sysctl_get_name
	FnSysctlGetCurrentValue      HelperFunc = 102 // bpf_sysctl_get_current_value
	FnSysctlGetNewValue          HelperFunc = 103 // bpf_sysctl_get_new_value
	FnSysctlSetNewValue          HelperFunc = 104 // bpf_sysctl_set_new_value
	FnStrtol                     HelperFunc = 105 // bpf_strtol
	FnStrtoul                    HelperFunc = 106 // bpf_strtoul
	FnSkStorageGet               HelperFunc = 107 // bpf_sk_storage_get
	FnSkStorageDelete            HelperFunc = 108 // bpf_sk_storage_delete
	FnSendSignal                 HelperFunc = 109 // bpf_send_signal
	FnTCPGenSyncookie            HelperFunc = 110 // bpf_tcp_gen_syncookie
	FnSkbOutput                  HelperFunc = 111 // bpf_skb_output
	FnProbeReadUser              HelperFunc = 112 // bpf_probe_read_user
	FnProbeReadKernel            HelperFunc = 113 // bpf_probe_read_kernel
	FnProbeReadUserStr           HelperFunc = 114 // bpf_probe_read_user_str
	FnProbeReadKernelStr         HelperFunc = 115 // bpf_probe_read_kernel_str
	FnTCPSendAck                 HelperFunc = 116 // bpf_tcp_send_ack
	FnSendSignalThread           HelperFunc = 117 // bpf_send_signal_thread
	FnJiffies64                  HelperFunc = 118 // bpf_jiffies64
	FnReadBranchRecords          HelperFunc = 119 // bpf_read_branch_records
	FnGetNsCurrentPidTgid        HelperFunc = 120 // bpf_get_ns_current_pid_tgid
	FnXDPOutput                  HelperFunc = 121 // bpf_xdp_output
	FnGetNetnsCookie             HelperFunc = 122 // bpf_get_netns_cookie
	FnGetCurrentAncestorCgroupID HelperFunc = 123 // bpf_get_current_ancestor_cgroup_id
	FnSkAssign                   HelperFunc = 124 // bpf_sk_assign
	FnKtimeGetBootNs             HelperFunc = 125 // bpf_ktime_get_boot_ns
	FnSeqPrintf                  HelperFunc = 126 // bpf_seq_printf
	FnSeqWrite                   HelperFunc = 127 // bpf_seq_write
	FnSkCgroupID                 HelperFunc = 128 // bpf_sk_cgroup_id
	FnSkAncestorCgroupID         HelperFunc = 129 // bpf_sk_ancestor_cgroup_id
	FnRingbufOutput              HelperFunc = 130 // bpf_ringbuf_output
	FnRingbufReserve             HelperFunc = 131 // bpf_ringbuf_reserve
	FnRingbufSubmit              HelperFunc = 132 // bpf_ringbuf_submit
	FnRingbufDiscard             HelperFunc = 133 // bpf_ringbuf_discard
	FnRingbufQuery               HelperFunc = 134 // bpf_ringbuf_query
	FnCsumLevel                  HelperFunc = 135 // bpf_csum_level
	FnSkcToTCP6Sock              HelperFunc = 136 // bpf_skc_to_tcp6_sock
	FnSkcToTCPSock               HelperFunc = 137 // bpf_skc_to_tcp_sock
	FnSkcToTCPTimewaitSock       HelperFunc = 138 // bpf_skc_to_tcp_timewait_sock
	FnSkcToTCPRequestSock        HelperFunc = 139 // bpf_skc_to_tcp_request_sock
	FnSkcToUDP6Sock              HelperFunc = 140 // bpf_skc_to_udp6_sock
	FnGetTaskStack               HelperFunc = 141 // bpf_get_task_stack
	FnLoadHdrOpt                 HelperFunc = 142 // bpf_load_hdr_opt
	FnStoreHdrOpt                HelperFunc = 143 // bpf_store_hdr_opt
	FnReserveHdrOpt              HelperFunc = 144 // bpf_reserve_hdr_opt
	FnInodeStorageGet            HelperFunc = 145 // bpf_inode_storage_get
	FnInodeStorageDelete         HelperFunc = 146 // bpf_inode_storage_delete
	FnDPath                      HelperFunc = 147 // bpf_d_path
	FnCopyFromUser               HelperFunc = 148 // bpf_copy_from_user
	FnSnprintfBTF                HelperFunc = 149 // bpf_snprintf_btf
	FnSeqPrintfBTF               HelperFunc = 150 // bpf_seq_printf_btf
	FnSkbCgroupClassid           HelperFunc = 151 // bpf_skb_cgroup_classid
	FnRedirectNeigh              HelperFunc = 152 // bpf_redirect_neigh
	FnPerCPUPtr                  HelperFunc = 153 // bpf_per_cpu_ptr
	FnThisCPUPtr                 HelperFunc = 154 // bpf_this_cpu_ptr
	FnRedirectPeer               HelperFunc = 155 // bpf_redirect_peer
	FnTaskStorageGet             HelperFunc = 156 // bpf_task_storage_get
	FnTaskStorageDelete          HelperFunc = 157 // bpf_task_storage_delete
	FnGetCurrentTaskBTF          HelperFunc = 158 // bpf_get_current_task_btf
	FnBprmOptsSet                HelperFunc = 159 // bpf_bprm_opts_set
	FnKtimeGetCoarseNs           HelperFunc = 160 // bpf_ktime_get_coarse_ns
	FnIMAInodeHash               HelperFunc = 161 // bpf_ima_inode_hash
	FnSockFromFile               HelperFunc = 162 // bpf_sock_from_file
	FnCheckMTU                   HelperFunc = 163 // bpf_check_mtu
	FnForEachMapElem             HelperFunc = 164 // bpf_for_each_map_elem
	FnSnprintf                   HelperFunc = 165 // bpf_snprintf
	FnSysBpf                     HelperFunc = 166 // bpf_sys_bpf
	FnBTFFindByNameKind          HelperFunc = 167 // bpf_btf_find_by_name_kind
	FnSysClose                   HelperFunc = 168 // bpf_sys_close
	FnTimerInit                  HelperFunc = 169 // bpf_timer_init
	FnTimerSetCallback           HelperFunc = 170 // bpf_timer_set_callback
	FnTimerStart                 HelperFunc = 171 // bpf_timer_start
	FnTimerCancel                HelperFunc = 172 // bpf_timer_cancel
	FnGetFuncIP                  HelperFunc = 173 // bpf_get_func_ip
	FnGetAttachCookie            HelperFunc = 174 // bpf_get_attach_cookie
	FnTaskPtRegs                 HelperFunc = 175 // bpf_task_pt_regs
	FnGetBranchSnapshot          HelperFunc = 176 // bpf_get_branch_snapshot
	FnTraceVprintk               HelperFunc = 177 // bpf_trace_vprintk
	FnSkcToUnixSock              HelperFunc = 178 // bpf_skc_to_unix_sock
	FnKallsymsLookupName         HelperFunc = 179 // bpf_kallsyms_lookup_name
	FnFindVma                    HelperFunc = 180 // bpf_find_vma
	FnLoop                       HelperFunc = 181 // bpf_loop
	FnStrncmp                    HelperFunc = 182 // bpf_strncmp
	FnGetFuncArg                 HelperFunc = 183 // bpf_get_func_arg
	FnGetFuncRet                 HelperFunc = 184 // bpf_get_func_ret
	FnGetFuncArgCnt              HelperFunc = 185 // bpf_get_func_arg_cnt
	FnGetRetval                  HelperFunc = 186 // bpf_get_retval
	FnSetRetval                  HelperFunc = 187 // bpf_set_retval
	FnXDPGetBuffLen              HelperFunc = 188 // bpf_xdp_get_buff_len
	FnXDPLoadBytes               HelperFunc = 189 // bpf_xdp_load_bytes
	FnXDPStoreBytes              HelperFunc = 190 // bpf_xdp_store_bytes
	FnCopyFromUserTask           HelperFunc = 191 // bpf_copy_from_user_task
	FnSkbSetTstamp               HelperFunc = 192 // bpf_skb_set_tstamp
	FnIMAFileHash                HelperFunc = 193 // bpf_ima_file_hash
	FnKptrXchg                   HelperFunc = 194 // bpf_kptr_xchg
	FnMapLookupPercpuElem        HelperFunc = 195 // bpf_map_lookup_percpu_elem
	FnSkcToMPTCPSock             HelperFunc = 196 // bpf_skc_to_mptcp_sock
	FnDynptrFromMem              HelperFunc = 197 // bpf_dynptr_from_mem
	FnRingbufReserveDynptr       HelperFunc = 198 // bpf_ringbuf_reserve_dynptr
	FnRingbufSubmitDynptr        HelperFunc = 199 // bpf_ringbuf_submit_dynptr
	FnRingbufDiscardDynptr       HelperFunc = 200 // bpf_ringbuf_discard_dynptr
	FnDynptrRead                 HelperFunc = 201 // bpf_dynptr_read
	FnDynptrWrite                HelperFunc = 202 // bpf_dynptr_write
	FnDynptrData                 HelperFunc = 203 // bpf_dynptr_data
	FnTCPRawGenSyncookieIPv4     HelperFunc = 204 // bpf_tcp_raw_gen_syncookie_ipv4
	FnTCPRawGenSyncookieIPv6     HelperFunc = 205 // bpf_tcp_raw_gen_syncookie_ipv6
	FnTCPRawCheckSyncookieIPv4   HelperFunc = 206 // bpf_tcp_raw_check_syncookie_ipv4
	FnTCPRawCheckSyncookieIPv6   HelperFunc = 207 // bpf_tcp_raw_check_syncookie_ipv6
	FnKtimeGetTaiNs              HelperFunc = 208 // bpf_ktime_get_tai_ns
	FnUserRingbufDrain           HelperFunc = 209 // bpf_user_ringbuf_drain
	FnCgrpStorageGet             HelperFunc = 210 // bpf_cgrp_storage_get
	FnCgrpStorageDelete          HelperFunc = 211 // bpf_cgrp_storage_delete

	// FnSkbLoadBytesRel is FnSkbLoadBytesRelative.
	FnSkbLoadBytesRel = FnSkbLoadBytesRelative
)

// helperNames holds the kernel's name of each helper, indexed by number.
var helperNames = [...]string{
	"bpf_unspec",
	"bpf_map_lookup_elem",
	"bpf_map_update_elem",
	"bpf_map_delete_elem",
	"bpf_probe_read",
	"bpf_ktime_get_ns",
	"bpf_trace_printk",
	"bpf_get_prandom_u32",
	"bpf_get_smp_processor_id",
	"bpf_skb_store_bytes",
	"bpf_l3_csum_replace",
	"bpf_l4_csum_replace",
	"bpf_tail_call",
	"bpf_clone_redirect",
	"bpf_get_current_pid_tgid",
	"bpf_get_current_uid_gid",
	"bpf_get_current_comm",
	"bpf_get_cgroup_classid",
	"bpf_skb_vlan_push",
	"bpf_skb_vlan_pop",
	"bpf_skb_get_tunnel_key",
	"bpf_skb_set_tunnel_key",
	"bpf_perf_event_read",
	"bpf_redirect",
	"bpf_get_route_realm",
	"bpf_perf_event_output",
	"bpf_skb_load_bytes",
	"bpf_get_stackid",
	"bpf_csum_diff",
	"bpf_skb_get_tunnel_opt",
	"bpf_skb_set_tunnel_opt",
	"bpf_skb_change_proto",
	"bpf_skb_change_type",
	"bpf_skb_under_cgroup",
	"bpf_get_hash_recalc",
	"bpf_get_current_task",
	"bpf_probe_write_user",
	"bpf_current_task_under_cgroup",
	"bpf_skb_change_tail",
	"bpf_skb_pull_data",
	"bpf_csum_update",
	"bpf_set_hash_invalid",
	"bpf_get_numa_node_id",
	"bpf_skb_change_head",
	"bpf_xdp_adjust_head",
	"bpf_probe_read_str",
	"bpf_get_socket_cookie",
	"bpf_get_socket_uid",
	"bpf_set_hash",
	"bpf_setsockopt",
	"bpf_skb_adjust_room",
	"bpf_redirect_map",
	"bpf_sk_redirect_map",
	"bpf_sock_map_update",
	"bpf_xdp_adjust_meta",
	"bpf_perf_event_read_value",
	"bpf_perf_prog_read_value",
	"bpf_getsockopt",
	"bpf_override_return",
	"bpf_sock_ops_cb_flags_set",
	"bpf_msg_redirect_map",
	"bpf_msg_apply_bytes",
	"bpf_msg_cork_bytes",
	"bpf_msg_pull_data",
	"bpf_bind",
	"bpf_xdp_adjust_tail",
	"bpf_skb_get_xfrm_state",
	"bpf_get_stack",
	"bpf_skb_load_bytes_relative",
	"bpf_fib_lookup",
	"bpf_sock_hash_update",
	"bpf_msg_redirect_hash",
	"bpf_sk_redirect_hash",
	"bpf_lwt_push_encap",
	"bpf_lwt_seg6_store_bytes",
	"bpf_lwt_seg6_adjust_srh",
	"bpf_lwt_seg6_action",
	"bpf_rc_repeat",
	"bpf_rc_keydown",
	"bpf_skb_cgroup_id",
	"bpf_get_current_cgroup_id",
	"bpf_get_local_storage",
	"bpf_sk_select_reuseport",
	"bpf_skb_ancestor_cgroup_id",
	"bpf_sk_lookup_tcp",
	"bpf_sk_lookup_udp",
	"bpf_sk_release",
	"bpf_map_push_elem",
	"bpf_map_pop_elem",
	"bpf_map_peek_elem",
	"bpf_msg_push_data",
	"bpf_msg_pop_data",
	"bpf_rc_pointer_rel",
	"bpf_spin_lock",
	"bpf_spin_unlock",
	"bpf_sk_fullsock",
	"bpf_tcp_sock",
	"bpf_skb_ecn_set_ce",
	"bpf_get_listener_sock",
	"bpf_skc_lookup_tcp",
	"bpf_tcp_check_syncookie",
	"bpf_sysctl_get_name",
	"bpf_sysctl_get_current_value",
	"bpf_sysctl_get_new_value",
	"bpf_sysctl_set_new_value",
	"bpf_strtol",
	"bpf_strtoul",
	"bpf_sk_storage_get",
	"bpf_sk_storage_delete",
	"bpf_send_signal",
	"bpf_tcp_gen_syncookie",
	"bpf_skb_output",
	"bpf_probe_read_user",
	"bpf_probe_read_kernel",
	"bpf_probe_read_user_str",
	"bpf_probe_read_kernel_str",
	"bpf_tcp_send_ack",
	"bpf_send_signal_thread",
	"bpf_jiffies64",
	"bpf_read_branch_records",
	"bpf_get_ns_current_pid_tgid",
	"bpf_xdp_output",
	"bpf_get_netns_cookie",
	"bpf_get_current_ancestor_cgroup_id",
	"bpf_sk_assign",
	"bpf_ktime_get_boot_ns",
	"bpf_seq_printf",
	"bpf_seq_write",
	"bpf_sk_cgroup_id",
	"bpf_sk_ancestor_cgroup_id",
	"bpf_ringbuf_output",
	"bpf_ringbuf_reserve",
	"bpf_ringbuf_submit",
	"bpf_ringbuf_discard",
	"bpf_ringbuf_query",
	"bpf_csum_level",
	"bpf_skc_to_tcp6_sock",
	"bpf_skc_to_tcp_sock",
	"bpf_skc_to_tcp_timewait_sock",
	"bpf_skc_to_tcp_request_sock",
	"bpf_skc_to_udp6_sock",
	"bpf_get_task_stack",
	"bpf_load_hdr_opt",
	"bpf_store_hdr_opt",
	"bpf_reserve_hdr_opt",
	"bpf_inode_storage_get",
	"bpf_inode_storage_delete",
	"bpf_d_path",
	"bpf_copy_from_user",
	"bpf_snprintf_btf",
	"bpf_seq_printf_btf",
	"bpf_skb_cgroup_classid",
	"bpf_redirect_neigh",
	"bpf_per_cpu_ptr",
	"bpf_this_cpu_ptr",
	"bpf_redirect_peer",
	"bpf_task_storage_get",
	"bpf_task_storage_delete",
	"bpf_get_current_task_btf",
	"bpf_bprm_opts_set",
	"bpf_ktime_get_coarse_ns",
	"bpf_ima_inode_hash",
	"bpf_sock_from_file",
	"bpf_check_mtu",
	"bpf_for_each_map_elem",
	"bpf_snprintf",
	"bpf_sys_bpf",
	"bpf_btf_find_by_name_kind",
	"bpf_sys_close",
	"bpf_timer_init",
	"bpf_timer_set_callback",
	"bpf_timer_start",
	"bpf_timer_cancel",
	"bpf_get_func_ip",
	"bpf_get_attach_cookie",
	"bpf_task_pt_regs",
	"bpf_get_branch_snapshot",
	"bpf_trace_vprintk",
	"bpf_skc_to_unix_sock",
	"bpf_kallsyms_lookup_name",
	"bpf_find_vma",
	"bpf_loop",
	"bpf_strncmp",
	"bpf_get_func_arg",
	"bpf_get_func_ret",
	"bpf_get_func_arg_cnt",
	"bpf_get_retval",
	"bpf_set_retval",
	"bpf_xdp_get_buff_len",
	"bpf_xdp_load_bytes",
	"bpf_xdp_store_bytes",
	"bpf_copy_from_user_task",
	"bpf_skb_set_tstamp",
	"bpf_ima_file_hash",
	"bpf_kptr_xchg",
	"bpf_map_lookup_percpu_elem",
	"bpf_skc_to_mptcp_sock",
	"bpf_dynptr_from_mem",
	"bpf_ringbuf_reserve_dynptr",
	"bpf_ringbuf_submit_dynptr",
	"bpf_ringbuf_discard_dynptr",
	"bpf_dynptr_read",
	"bpf_dynptr_write",
	"bpf_dynptr_data",
	"bpf_tcp_raw_gen_syncookie_ipv4",
	"bpf_tcp_raw_gen_syncookie_ipv6",
	"bpf_tcp_raw_check_syncookie_ipv4",
	"bpf_tcp_raw_check_syncookie_ipv6",
	"bpf_ktime_get_tai_ns",
	"bpf_user_ringbuf_drain",
	"bpf_cgrp_storage_get",
	"bpf_cgrp_storage_delete",
}

// String returns the kernel's name of fn, as the verifier log prints it in
// `call bpf_get_prandom_u32#7`, or "unknown" when fn is not a helper the
// kernel knows (the verifier prints `call unknown#9999`). FnUnspec, number
// 0, is named "bpf_unspec".
func (fn HelperFunc) String() string {
	if fn >= 0 && int(fn) < len(helperNames) {
		return helperNames[fn]
	}
	return "unknown"
}

// helperByName maps kernel names to numbers, for Parse.
var helperByName = func() map[string]HelperFunc {
	m := make(map[string]HelperFunc, len(helperNames))
	for i, n := range helperNames {
		m[n] = HelperFunc(i)
	}
	return m
}()
